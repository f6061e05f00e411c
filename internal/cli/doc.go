// Package cli implements the machtrace command line: one file per subcommand,
// each built by a NewCmdX constructor from a Factory, with the work done in a
// cobra-free run function that tests call directly.
package cli
