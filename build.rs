//! Compiles the official ONNX schema (`proto/onnx.proto`, onnx 1.23) into Rust message types
//! for `dypose export`, with protox (a protobuf compiler in Rust): no `protoc` binary needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = protox::compile(["onnx.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
