//! A coordinator killed with SIGKILL and restarted on the same data dir.

mod common;

use std::time::Duration;

use common::{Fleet, QUICK_SPEC, wait_until};

#[test]
fn a_killed_coordinator_restarts_with_its_results_and_its_agent_takes_up_what_was_in_flight() {
    let mut f = Fleet::start(120);
    let token = std::fs::read_to_string(f.token_file()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(f.token_file()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the token file must be private");
    }
    f.start_agent("steady", &[]);
    f.wait_for_agents(1);
    let first = f.submit(&f.write_spec("quick.toml", QUICK_SPEC));
    let before = f.wait_for_run(&first, Duration::from_secs(120));
    assert_eq!(before["run"]["state"], "finished");

    let second = f.submit(&f.write_spec("long.toml", &common::long_cell("agent")));
    wait_until("the long cell to run", Duration::from_secs(60), || (f.results(&second)["cells"][0]["state"] == "running").then_some(()));
    f.coordinator.as_mut().unwrap().kill9();
    f.start_coordinator();
    assert_eq!(std::fs::read_to_string(f.token_file()).unwrap(), token, "the token survives restarts");

    assert_eq!(f.results(&first), before, "finished results are kept as they were");
    // The agent went on measuring, reconnects by itself and re-attaches the cell.
    let after = f.wait_for_run(&second, Duration::from_secs(120));
    assert_eq!(after["run"]["state"], "finished", "{after}");
    assert_eq!(after["cells"][0]["attempts"], 1, "{after}");
}
