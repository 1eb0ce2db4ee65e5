//! TensorFlow checkpoints: TensorBundles (V2) and TF1 tensor-slice files (V1).
//!
//! - [`table`]: the LevelDB-style sorted table of the `.index` file (reader and builder);
//! - [`bundle`]: header, entries, data shards, strings, partitioned variables;
//! - [`slice`](mod@slice): OrderedCode keys of the slices of partitioned variables;
//! - [`object_graph`]: the TF2 `_CHECKPOINTABLE_OBJECT_GRAPH`;
//! - [`meta`]: the `.meta` graph beside a TF1 checkpoint (its variables, in creation order);
//! - [`graphdef`]: frozen graphs (`.pb` GraphDefs), their `Const` nodes read as tensors
//!   ([`tensor_proto`] decodes each `TensorProto`, [`wire`] the protobuf framing);
//! - [`state`]: the `checkpoint` state file;
//! - [`resolve`]: from what the user typed to a checkpoint prefix;
//! - [`v1`]: TF1 V1 checkpoints (tensor-slice tables: `model.ckpt`, `export-00000-of-00001`);
//! - [`writer`]: writing checkpoints as TensorFlow does;
//! - [`coding`]: varints, fixed-width integers and masked crc32c.

pub mod bundle;
pub mod coding;
pub mod graphdef;
pub mod meta;
pub mod object_graph;
pub mod resolve;
pub mod slice;
pub mod state;
mod strings;
pub mod table;
pub mod tensor_proto;
pub mod v1;
pub mod wire;
pub mod writer;

pub use bundle::Bundle;
