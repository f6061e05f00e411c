// Package darwin is machtrace's macOS backend, built on the Mach calls of
// package mach. It has no cgo of its own.
//
// A Task is a traced process: Attach takes its task port with task_for_pid
// (and, when that is refused, runs the permission doctor to say which rule
// refused it and how to fix it); Launch starts a program with posix_spawn and
// POSIX_SPAWN_START_SUSPENDED so the tracer sees it before its first
// instruction. Suspend and Resume use task_suspend2 suspension tokens, so a
// tracer that dies releases its target. Thread state is read and written per
// Mach flavor for x86_64 and arm64, with pointer-authentication bits stripped
// from arm64 code addresses; memory is read page by page around unmapped
// holes; Images lists the loaded Mach-O images from dyld's
// dyld_all_image_infos.
//
// Everything that is not a Mach call is portable Go tested on every platform:
// the dyld image-list parser, the permission-doctor decision table, PAC
// stripping, thread bookkeeping and the paging reader. The Task logic itself
// runs over a small kernel interface, so tests drive it with a fake Mach
// kernel on Linux. Package darwin does not depend on package tracer; the
// adapter that makes a Task a tracer.Backend lives in tracer/local_darwin.go.
package darwin
