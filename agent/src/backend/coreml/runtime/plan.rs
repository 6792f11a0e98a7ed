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

use super::{describe, file_url, is};

/// Counts and cost shares per device, accumulated over operations.
#[derive(Default)]
struct Tally {
    ops: [u32; 3],
    cost: [f64; 3],
}

const DEVICES: [&str; 3] = ["ane", "gpu", "cpu"];

/// The placement of the compiled model at `dir` under `config`; `None` (logged) where the plan
/// cannot be built (older macOS, a neural-network model type).
pub fn placement(dir: &Path, config: &MLModelConfiguration) -> Option<pb::Placement> {
    if !available() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| tracing::warn!("this macOS has no MLComputePlan (it came with 14.4): cells report no placement"));
        return None;
    }
    match load_plan(dir, config) {
        Ok(plan) => Some(summarise(&plan)),
        Err(e) => {
            tracing::warn!(model = %dir.display(), error = %e, "no compute plan; placement unknown");
            None
        }
    }
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

fn summarise(plan: &MLComputePlan) -> pb::Placement {
    let mut tally = Tally::default();
    // SAFETY: walking the plan's own model structure and asking the plan about its operations.
    unsafe {
        if let Some(program) = plan.modelStructure().program() {
            for function in program.functions().to_vecs().1 {
                walk(plan, &function.block(), &mut tally);
            }
        }
    }
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
