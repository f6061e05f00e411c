// Package kdptest provides test helpers for KDP code: the LLDB transcripts
// under shared/testdata/kdp-lldb, a fake KDP peer on loopback UDP, and a lossy
// UDP proxy that drops, duplicates and reorders datagrams.
//
// Everything here listens on 127.0.0.1 only and is bounded in time; it is for
// tests, not for talking to real targets.
package kdptest
