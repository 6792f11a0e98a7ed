-- Version 2: coordinator replicas sharing one store. Each replica says it is alive every few
-- seconds; an agent is online on the replica its session is on. A replica whose word stops is
-- dead: another one leases its agents' cells to them (they re-attach wherever they reconnect).
CREATE TABLE IF NOT EXISTS replicas (
    id            TEXT PRIMARY KEY,
    address       TEXT NOT NULL,
    started_ms    BIGINT NOT NULL,
    heartbeat_ms  BIGINT NOT NULL
);
ALTER TABLE agents ADD COLUMN replica TEXT NOT NULL DEFAULT '';
ALTER TABLE agents ADD COLUMN online BIGINT NOT NULL DEFAULT 0;
