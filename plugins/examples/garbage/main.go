// Command garbage is a hostile WebAssembly filter written without the
// guest SDK: it exports the ABI's functions itself (in exports_wasip1.go)
// and answers malformed verdicts on data holding a trigger word:
//
//	oob   a record pointer outside memory
//	len   a record whose lengths do not add up
//	kind  a record of an unknown kind
//	code  a rejection with code 99
//	huge  a record longer than the host accepts
//
// Other messages pass.
package main

func main() {}
