//! Moving numbers in and out of CoreML: `MLMultiArray`s from Rust slices, feature providers
//! from named arrays, predictions, and outputs back as f32.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr::NonNull;

use block2::StackBlock;

use half::f16;
use objc2::AnyThread;
use objc2::rc::Retained;
use objc2::runtime::{AnyObject, ProtocolObject};
use objc2_core_ml::{MLDictionaryFeatureProvider, MLFeatureProvider, MLFeatureValue, MLModel, MLMultiArray, MLMultiArrayDataType, MLState};
use objc2_foundation::{NSArray, NSDictionary, NSInteger, NSNumber, NSString};

use super::describe;
use crate::backend::{BackendError, Result};

/// Element types the planners produce.
pub trait Element: Copy {
    const DATA_TYPE: MLMultiArrayDataType;
}

impl Element for i32 {
    const DATA_TYPE: MLMultiArrayDataType = MLMultiArrayDataType::Int32;
}

impl Element for f16 {
    const DATA_TYPE: MLMultiArrayDataType = MLMultiArrayDataType::Float16;
}

impl Element for f32 {
    const DATA_TYPE: MLMultiArrayDataType = MLMultiArrayDataType::Float32;
}

/// A contiguous array of `shape` holding `data` (row-major).
pub fn array<T: Element>(shape: &[usize], data: &[T]) -> Result<Retained<MLMultiArray>> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(BackendError::Inference(format!("array of shape {shape:?} given {} values", data.len())));
    }
    let dims: Vec<Retained<NSNumber>> = shape.iter().map(|&d| NSNumber::new_isize(d as isize)).collect();
    let shape_ns = NSArray::from_retained_slice(&dims);
    // SAFETY: a fresh array of `count` elements of `T`'s type, laid out first-major.
    let array = unsafe { MLMultiArray::initWithShape_dataType_error(MLMultiArray::alloc(), &shape_ns, T::DATA_TYPE) }
        .map_err(|e| BackendError::Inference(format!("MLMultiArray {shape:?}: {}", describe(Some(&e)))))?;
    let fill = StackBlock::new(|bytes: NonNull<c_void>, size: NSInteger, _strides: NonNull<NSArray<NSNumber>>| {
        let n = count.min(size.max(0) as usize / std::mem::size_of::<T>());
        // SAFETY: CoreML hands over at least `size` writable bytes of the array's storage.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), bytes.cast::<T>().as_ptr(), n) };
    });
    // SAFETY: the block runs before the call returns; it writes within the bytes it is given.
    unsafe { array.getMutableBytesWithHandler(&fill) };
    Ok(array)
}

/// A feature provider holding `inputs` by name.
pub fn features(inputs: Vec<(&str, Retained<MLMultiArray>)>) -> Result<Retained<MLDictionaryFeatureProvider>> {
    let (names, values): (Vec<_>, Vec<_>) = inputs
        .into_iter()
        .map(|(name, array)| {
            // SAFETY: wrapping a valid array in a feature value.
            let value = unsafe { MLFeatureValue::featureValueWithMultiArray(&array) };
            (NSString::from_str(name), Retained::into_super(Retained::into_super(value)))
        })
        .unzip();
    let keys: Vec<&NSString> = names.iter().map(|n| &**n).collect();
    let dict: Retained<NSDictionary<NSString, AnyObject>> = NSDictionary::from_retained_objects(&keys, &values);
    // SAFETY: every value is an MLFeatureValue, as the initialiser requires.
    unsafe { MLDictionaryFeatureProvider::initWithDictionary_error(MLDictionaryFeatureProvider::alloc(), &dict) }
        .map_err(|e| BackendError::Inference(format!("inputs: {}", describe(Some(&e)))))
}

pub type Outputs = Retained<ProtocolObject<dyn MLFeatureProvider>>;

/// One prediction, through `state` when the model keeps one (its KV cache):
/// `predictionFromFeatures:error:` (macOS 10.13), `predictionFromFeatures:usingState:error:`
/// (macOS 15, only reached for anemll models, refused below macOS 15 at load). Call it inside an
/// autorelease pool ([`super::autoreleased`]): CoreML returns and keeps autoreleased objects.
pub fn predict(model: &MLModel, inputs: &MLDictionaryFeatureProvider, state: Option<&MLState>) -> Result<Outputs> {
    let inputs = ProtocolObject::from_ref(inputs);
    // SAFETY: inputs match the model's description (checked by CoreML, which reports an error).
    let out = unsafe {
        match state {
            Some(state) => model.predictionFromFeatures_usingState_error(inputs, state),
            None => model.predictionFromFeatures_error(inputs),
        }
    };
    out.map_err(|e| BackendError::Inference(format!("prediction: {}", describe(Some(&e)))))
}

/// Output `name` as f32 values, with its shape; Float16, Float32, Float64, Int32 and Int8 arrays
/// (any other element type is refused, naming it).
pub fn output_f32(outputs: &Outputs, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
    let missing = || BackendError::Inference(format!("the model gave no output `{name}`"));
    // SAFETY: reading a feature value the prediction returned.
    let array = unsafe { outputs.featureValueForName(&NSString::from_str(name)).and_then(|v| v.multiArrayValue()) }.ok_or_else(missing)?;
    let values = to_f32(&array).map_err(|why| BackendError::Inference(format!("output `{name}`: {why}")))?;
    Ok((shape(&array), values))
}

/// The element types [`to_f32`] reads; `None` for any other.
#[derive(Clone, Copy)]
enum Kind {
    F16,
    F32,
    F64,
    I32,
    I8,
}

impl Kind {
    fn of(kind: MLMultiArrayDataType) -> Option<Kind> {
        Some(match kind {
            MLMultiArrayDataType::Float16 => Kind::F16,
            MLMultiArrayDataType::Float32 => Kind::F32,
            MLMultiArrayDataType::Float64 => Kind::F64,
            MLMultiArrayDataType::Int32 => Kind::I32,
            // MLMultiArrayDataTypeInt8 is macOS 26; only a newer CoreML hands one over.
            MLMultiArrayDataType::Int8 => Kind::I8,
            _ => return None,
        })
    }
}

/// An `MLMultiArrayDataType`'s name (its raw value when unknown: `0x10000 | bits` float,
/// `0x20000 | bits` integer).
fn type_name(kind: MLMultiArrayDataType) -> String {
    match kind {
        MLMultiArrayDataType::Float16 => "Float16".into(),
        MLMultiArrayDataType::Float32 => "Float32".into(),
        MLMultiArrayDataType::Float64 => "Float64".into(),
        MLMultiArrayDataType::Int32 => "Int32".into(),
        MLMultiArrayDataType::Int8 => "Int8".into(),
        other => format!("MLMultiArrayDataType {:#x}", other.0),
    }
}

/// An array's shape.
pub fn shape(array: &MLMultiArray) -> Vec<usize> {
    // SAFETY: shape is a plain property.
    let numbers = unsafe { array.shape() };
    dims(&numbers)
}

/// A shape given as numbers.
pub fn dims(numbers: &NSArray<NSNumber>) -> Vec<usize> {
    numbers.iter().map(|n| n.as_isize().max(0) as usize).collect()
}

/// An array's values in logical (row-major) order as f32, whatever its strides and storage
/// (CoreML may keep outputs in a GPU or Neural Engine surface: read through its byte handler,
/// `getBytesWithHandler:`, macOS 12.3). An element type it does not know is refused.
fn to_f32(array: &MLMultiArray) -> std::result::Result<Vec<f32>, String> {
    let sizes = shape(array);
    // SAFETY: plain properties.
    let (strides, data_type) = unsafe { (dims(&array.strides()), array.dataType()) };
    let kind = Kind::of(data_type).ok_or_else(|| format!("element type {} cannot be read", type_name(data_type)))?;
    let count: usize = sizes.iter().product();
    let out = RefCell::new(Vec::with_capacity(count));
    let read = StackBlock::new(|bytes: NonNull<c_void>, _size: NSInteger| {
        let mut out = out.borrow_mut();
        for i in 0..count {
            let at = offset(i, &sizes, &strides);
            // SAFETY: `at` is inside the array by its own shape and strides.
            let v = unsafe {
                match kind {
                    Kind::F16 => bytes.cast::<f16>().add(at).read().to_f32(),
                    Kind::F32 => bytes.cast::<f32>().add(at).read(),
                    Kind::F64 => bytes.cast::<f64>().add(at).read() as f32,
                    Kind::I32 => bytes.cast::<i32>().add(at).read() as f32,
                    Kind::I8 => f32::from(bytes.cast::<i8>().add(at).read()),
                }
            };
            out.push(v);
        }
    });
    // SAFETY: the block runs before the call returns and only reads.
    unsafe { array.getBytesWithHandler(&read) };
    Ok(out.into_inner())
}

/// Element offset of logical index `i` in an array of `dims` laid out with `strides`.
fn offset(mut i: usize, dims: &[usize], strides: &[usize]) -> usize {
    let mut off = 0;
    for (d, s) in dims.iter().zip(strides).rev() {
        let d = (*d).max(1);
        off += (i % d) * s;
        i /= d;
    }
    off
}
