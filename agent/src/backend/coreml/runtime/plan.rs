//! Where a model's operations run, from CoreML's compute plan (`MLComputePlan`, macOS 14.4+):
//! per device, how many ML Program operations CoreML prefers to run there and their share of
//! the plan's estimated cost. A model meant for the Neural Engine that shows ops on the GPU or
//! CPU has fallen back, silently as far as CoreML's API goes.

use std::path::Path;
use std::sync::mpsc;

use anefleet_proto::pb;
use block2::RcBlock;
use objc2::rc::Retained;
use objc2::runtime::ProtocolObject;
use objc2_core_ml::{
    MLCPUComputeDevice, MLComputeDeviceProtocol, MLComputePlan, MLGPUComputeDevice, MLModelConfiguration, MLModelStructureProgramBlock,
    MLNeuralEngineComputeDevice,
};
use objc2_foundation::NSError;

use super::{configuration, describe, file_url, is};
use crate::backend::PlanParts;

/// Counts and cost shares per device, accumulated over operations.
#[derive(Default)]
struct Tally {
    ops: [u32; 3],
    cost: [f64; 3],
}

const DEVICES: [&str; 3] = ["ane", "gpu", "cpu"];

/// Where the operations of every part of `plan` run, each part's compute plan asked for the
/// function the workload runs in it; `None` (logged) where a plan cannot be built (older macOS, a
/// neural-network model type). Counts add up over the parts; each part's cost shares (relative
/// within its own plan) weigh equally in the combined share.
pub fn placement(plan: &PlanParts) -> Option<pb::Placement> {
    if !available() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| tracing::warn!("this macOS has no MLComputePlan (it came with 14.4): cells report no placement"));
        return None;
    }
    super::autoreleased(|| {
        let mut tally = Tally::default();
        for (dir, function) in &plan.parts {
            let outcome = configuration(&plan.unit, function.as_deref()).map_err(|e| e.to_string()).and_then(|c| load_plan(dir, &c));
            match outcome {
                Ok(p) => add(&p, function.as_deref(), &mut tally),
                Err(e) => {
                    tracing::warn!(model = %dir.display(), error = %e, "no compute plan; placement unknown");
                    return None;
                }
            }
        }
        Some(summary(&tally))
    })
}

/// Whether the running macOS has the class (14.4+): asked of the Objective-C runtime by name, since
/// naming the class through the binding on an older system aborts the process.
fn available() -> bool {
    objc2::runtime::AnyClass::get(c"MLComputePlan").is_some()
}

fn load_plan(dir: &Path, config: &MLModelConfiguration) -> Result<Retained<MLComputePlan>, String> {
    let (tx, rx) = mpsc::channel::<Result<Retained<MLComputePlan>, String>>();
    let handler = RcBlock::new(move |plan: *mut MLComputePlan, error: *mut NSError| {
        // SAFETY: CoreML passes a valid plan or a valid error, alive for the call; retaining the plan keeps it.
        let outcome = unsafe { Retained::retain(plan) }.ok_or_else(|| describe(unsafe { error.as_ref() }));
        let _ = tx.send(outcome);
    });
    // SAFETY: the URL, configuration and block outlive the call.
    unsafe { MLComputePlan::loadContentsOfURL_configuration_completionHandler(&file_url(dir), config, &handler) };
    rx.recv().map_err(|_| "CoreML never answered".to_string())?
}

/// Adds the operations of `function` (every function when `None`: a model with one) to `tally`,
/// the cost shares normalised within this plan.
fn add(plan: &MLComputePlan, function: Option<&str>, tally: &mut Tally) {
    let mut part = Tally::default();
    // SAFETY: walking the plan's own model structure and asking the plan about its operations.
    unsafe {
        if let Some(program) = plan.modelStructure().program() {
            let (names, functions) = program.functions().to_vecs();
            for (name, f) in names.iter().zip(functions) {
                if function.is_none_or(|want| name.to_string() == want) {
                    walk(plan, &f.block(), &mut part);
                }
            }
        }
    }
    let cost: f64 = part.cost.iter().sum();
    for i in 0..DEVICES.len() {
        tally.ops[i] += part.ops[i];
        tally.cost[i] += if cost > 0.0 { part.cost[i] / cost } else { 0.0 };
    }
}

fn summary(tally: &Tally) -> pb::Placement {
    let total_cost: f64 = tally.cost.iter().sum();
    let devices = DEVICES
        .iter()
        .enumerate()
        .filter(|(i, _)| tally.ops[*i] > 0)
        .map(|(i, d)| pb::DevicePlacement {
            device: d.to_string(),
            ops: tally.ops[i],
            estimated_cost: if total_cost > 0.0 { tally.cost[i] / total_cost } else { 0.0 },
        })
        .collect();
    pb::Placement { devices, ops_total: tally.ops.iter().sum() }
}

/// Adds every operation of `block` (and of the blocks nested in it) to `tally`.
unsafe fn walk(plan: &MLComputePlan, block: &MLModelStructureProgramBlock, tally: &mut Tally) {
    // SAFETY: the caller holds the plan these structures belong to.
    unsafe {
        for op in block.operations() {
            if let Some(usage) = plan.computeDeviceUsageForMLProgramOperation(&op)
                && let Some(i) = device_index(&usage.preferredComputeDevice())
            {
                tally.ops[i] += 1;
                tally.cost[i] += plan.estimatedCostOfMLProgramOperation(&op).map_or(0.0, |c| c.weight());
            }
            for inner in op.blocks() {
                walk(plan, &inner, tally);
            }
        }
    }
}

fn device_index(device: &ProtocolObject<dyn MLComputeDeviceProtocol>) -> Option<usize> {
    if is::<MLNeuralEngineComputeDevice>(device) {
        Some(0)
    } else if is::<MLGPUComputeDevice>(device) {
        Some(1)
    } else if is::<MLCPUComputeDevice>(device) {
        Some(2)
    } else {
        None
    }
}
