// Command noexport is a hostile WebAssembly module: a valid wasip1
// reactor that exports none of the filter ABI's functions, which the host
// refuses to load.
package main

func main() {}
