package mach

import (
	"errors"
	"fmt"
)

// KernReturn is a Mach kern_return_t. A non-zero value is a Go error whose
// text is the name of the constant and Apple's mach_error_string message, for
// example "KERN_PROTECTION_FAILURE (2): (os/kern) protection failure".
//
// The constants are themselves sentinels: errors.Is(err, KERN_TERMINATED)
// holds for any error chain that carries that code.
type KernReturn int32

// kern_return_t values (mach/kern_return.h, mach/message.h, mach/mig_errors.h).
const (
	KERN_SUCCESS                  KernReturn = 0
	KERN_INVALID_ADDRESS          KernReturn = 1
	KERN_PROTECTION_FAILURE       KernReturn = 2
	KERN_NO_SPACE                 KernReturn = 3
	KERN_INVALID_ARGUMENT         KernReturn = 4
	KERN_FAILURE                  KernReturn = 5
	KERN_RESOURCE_SHORTAGE        KernReturn = 6
	KERN_NOT_RECEIVER             KernReturn = 7
	KERN_NO_ACCESS                KernReturn = 8
	KERN_MEMORY_FAILURE           KernReturn = 9
	KERN_MEMORY_ERROR             KernReturn = 10
	KERN_ALREADY_IN_SET           KernReturn = 11
	KERN_NOT_IN_SET               KernReturn = 12
	KERN_NAME_EXISTS              KernReturn = 13
	KERN_ABORTED                  KernReturn = 14
	KERN_INVALID_NAME             KernReturn = 15
	KERN_INVALID_TASK             KernReturn = 16
	KERN_INVALID_RIGHT            KernReturn = 17
	KERN_INVALID_VALUE            KernReturn = 18
	KERN_UREFS_OVERFLOW           KernReturn = 19
	KERN_INVALID_CAPABILITY       KernReturn = 20
	KERN_RIGHT_EXISTS             KernReturn = 21
	KERN_INVALID_HOST             KernReturn = 22
	KERN_MEMORY_PRESENT           KernReturn = 23
	KERN_MEMORY_DATA_MOVED        KernReturn = 24
	KERN_MEMORY_RESTART_COPY      KernReturn = 25
	KERN_INVALID_PROCESSOR_SET    KernReturn = 26
	KERN_POLICY_LIMIT             KernReturn = 27
	KERN_INVALID_POLICY           KernReturn = 28
	KERN_INVALID_OBJECT           KernReturn = 29
	KERN_ALREADY_WAITING          KernReturn = 30
	KERN_DEFAULT_SET              KernReturn = 31
	KERN_EXCEPTION_PROTECTED      KernReturn = 32
	KERN_INVALID_LEDGER           KernReturn = 33
	KERN_INVALID_MEMORY_CONTROL   KernReturn = 34
	KERN_INVALID_SECURITY         KernReturn = 35
	KERN_NOT_DEPRESSED            KernReturn = 36
	KERN_TERMINATED               KernReturn = 37
	KERN_LOCK_SET_DESTROYED       KernReturn = 38
	KERN_LOCK_UNSTABLE            KernReturn = 39
	KERN_LOCK_OWNED               KernReturn = 40
	KERN_LOCK_OWNED_SELF          KernReturn = 41
	KERN_SEMAPHORE_DESTROYED      KernReturn = 42
	KERN_RPC_SERVER_TERMINATED    KernReturn = 43
	KERN_RPC_TERMINATE_ORPHAN     KernReturn = 44
	KERN_RPC_CONTINUE_ORPHAN      KernReturn = 45
	KERN_NOT_SUPPORTED            KernReturn = 46
	KERN_NODE_DOWN                KernReturn = 47
	KERN_NOT_WAITING              KernReturn = 48
	KERN_OPERATION_TIMED_OUT      KernReturn = 49
	KERN_CODESIGN_ERROR           KernReturn = 50
	KERN_POLICY_STATIC            KernReturn = 51
	KERN_INSUFFICIENT_BUFFER_SIZE KernReturn = 52
	KERN_DENIED                   KernReturn = 53

	MACH_SEND_IN_PROGRESS    KernReturn = 0x10000001
	MACH_SEND_INVALID_DATA   KernReturn = 0x10000002
	MACH_SEND_INVALID_DEST   KernReturn = 0x10000003
	MACH_SEND_TIMED_OUT      KernReturn = 0x10000004
	MACH_SEND_INTERRUPTED    KernReturn = 0x10000007
	MACH_SEND_MSG_TOO_SMALL  KernReturn = 0x10000008
	MACH_SEND_INVALID_REPLY  KernReturn = 0x10000009
	MACH_SEND_INVALID_RIGHT  KernReturn = 0x1000000a
	MACH_SEND_INVALID_NOTIFY KernReturn = 0x1000000b
	MACH_SEND_INVALID_MEMORY KernReturn = 0x1000000c
	MACH_SEND_NO_BUFFER      KernReturn = 0x1000000d
	MACH_SEND_TOO_LARGE      KernReturn = 0x1000000e
	MACH_SEND_INVALID_TYPE   KernReturn = 0x1000000f
	MACH_SEND_INVALID_HEADER KernReturn = 0x10000010

	MACH_RCV_IN_PROGRESS    KernReturn = 0x10004001
	MACH_RCV_INVALID_NAME   KernReturn = 0x10004002
	MACH_RCV_TIMED_OUT      KernReturn = 0x10004003
	MACH_RCV_TOO_LARGE      KernReturn = 0x10004004
	MACH_RCV_INTERRUPTED    KernReturn = 0x10004005
	MACH_RCV_PORT_CHANGED   KernReturn = 0x10004006
	MACH_RCV_INVALID_NOTIFY KernReturn = 0x10004007
	MACH_RCV_INVALID_DATA   KernReturn = 0x10004008
	MACH_RCV_PORT_DIED      KernReturn = 0x10004009

	MIG_TYPE_ERROR      KernReturn = -300
	MIG_REPLY_MISMATCH  KernReturn = -301
	MIG_REMOTE_ERROR    KernReturn = -302
	MIG_BAD_ID          KernReturn = -303
	MIG_BAD_ARGUMENTS   KernReturn = -304
	MIG_NO_REPLY        KernReturn = -305
	MIG_EXCEPTION       KernReturn = -306
	MIG_ARRAY_TOO_LARGE KernReturn = -307
	MIG_SERVER_DIED     KernReturn = -308
	MIG_TRAILER_ERROR   KernReturn = -309
)

// kernInfo is a code's constant name and its mach_error_string text.
type kernInfo struct{ name, msg string }

// kernTable holds every code KernReturn knows by name. The messages are the
// strings libsystem_kernel's mach_error_string returns (err_kern.sub,
// err_mach_ipc.sub); MIG codes go through its do_compat mapping, which is why
// -308 reads "(ipc/mig) server died".
var kernTable = map[KernReturn]kernInfo{
	KERN_SUCCESS:                  {"KERN_SUCCESS", "(os/kern) successful"},
	KERN_INVALID_ADDRESS:          {"KERN_INVALID_ADDRESS", "(os/kern) invalid address"},
	KERN_PROTECTION_FAILURE:       {"KERN_PROTECTION_FAILURE", "(os/kern) protection failure"},
	KERN_NO_SPACE:                 {"KERN_NO_SPACE", "(os/kern) no space available"},
	KERN_INVALID_ARGUMENT:         {"KERN_INVALID_ARGUMENT", "(os/kern) invalid argument"},
	KERN_FAILURE:                  {"KERN_FAILURE", "(os/kern) failure"},
	KERN_RESOURCE_SHORTAGE:        {"KERN_RESOURCE_SHORTAGE", "(os/kern) resource shortage"},
	KERN_NOT_RECEIVER:             {"KERN_NOT_RECEIVER", "(os/kern) not receiver"},
	KERN_NO_ACCESS:                {"KERN_NO_ACCESS", "(os/kern) no access"},
	KERN_MEMORY_FAILURE:           {"KERN_MEMORY_FAILURE", "(os/kern) memory failure"},
	KERN_MEMORY_ERROR:             {"KERN_MEMORY_ERROR", "(os/kern) memory error"},
	KERN_ALREADY_IN_SET:           {"KERN_ALREADY_IN_SET", "(os/kern) already in set"},
	KERN_NOT_IN_SET:               {"KERN_NOT_IN_SET", "(os/kern) not in set"},
	KERN_NAME_EXISTS:              {"KERN_NAME_EXISTS", "(os/kern) name exists"},
	KERN_ABORTED:                  {"KERN_ABORTED", "(os/kern) aborted"},
	KERN_INVALID_NAME:             {"KERN_INVALID_NAME", "(os/kern) invalid name"},
	KERN_INVALID_TASK:             {"KERN_INVALID_TASK", "(os/kern) invalid task"},
	KERN_INVALID_RIGHT:            {"KERN_INVALID_RIGHT", "(os/kern) invalid right"},
	KERN_INVALID_VALUE:            {"KERN_INVALID_VALUE", "(os/kern) invalid value"},
	KERN_UREFS_OVERFLOW:           {"KERN_UREFS_OVERFLOW", "(os/kern) urefs overflow"},
	KERN_INVALID_CAPABILITY:       {"KERN_INVALID_CAPABILITY", "(os/kern) invalid capability"},
	KERN_RIGHT_EXISTS:             {"KERN_RIGHT_EXISTS", "(os/kern) right exists"},
	KERN_INVALID_HOST:             {"KERN_INVALID_HOST", "(os/kern) invalid host"},
	KERN_MEMORY_PRESENT:           {"KERN_MEMORY_PRESENT", "(os/kern) memory present"},
	KERN_MEMORY_DATA_MOVED:        {"KERN_MEMORY_DATA_MOVED", "(os/kern) memory data moved"},
	KERN_MEMORY_RESTART_COPY:      {"KERN_MEMORY_RESTART_COPY", "(os/kern) memory restart copy"},
	KERN_INVALID_PROCESSOR_SET:    {"KERN_INVALID_PROCESSOR_SET", "(os/kern) invalid processor set"},
	KERN_POLICY_LIMIT:             {"KERN_POLICY_LIMIT", "(os/kern) policy limit"},
	KERN_INVALID_POLICY:           {"KERN_INVALID_POLICY", "(os/kern) invalid policy"},
	KERN_INVALID_OBJECT:           {"KERN_INVALID_OBJECT", "(os/kern) invalid object"},
	KERN_ALREADY_WAITING:          {"KERN_ALREADY_WAITING", "(os/kern) already waiting"},
	KERN_DEFAULT_SET:              {"KERN_DEFAULT_SET", "(os/kern) default set"},
	KERN_EXCEPTION_PROTECTED:      {"KERN_EXCEPTION_PROTECTED", "(os/kern) exception protected"},
	KERN_INVALID_LEDGER:           {"KERN_INVALID_LEDGER", "(os/kern) invalid ledger"},
	KERN_INVALID_MEMORY_CONTROL:   {"KERN_INVALID_MEMORY_CONTROL", "(os/kern) invalid memory control"},
	KERN_INVALID_SECURITY:         {"KERN_INVALID_SECURITY", "(os/kern) invalid security"},
	KERN_NOT_DEPRESSED:            {"KERN_NOT_DEPRESSED", "(os/kern) not depressed"},
	KERN_TERMINATED:               {"KERN_TERMINATED", "(os/kern) object terminated"},
	KERN_LOCK_SET_DESTROYED:       {"KERN_LOCK_SET_DESTROYED", "(os/kern) lock set destroyed"},
	KERN_LOCK_UNSTABLE:            {"KERN_LOCK_UNSTABLE", "(os/kern) lock unstable"},
	KERN_LOCK_OWNED:               {"KERN_LOCK_OWNED", "(os/kern) lock owned by another"},
	KERN_LOCK_OWNED_SELF:          {"KERN_LOCK_OWNED_SELF", "(os/kern) lock owned by self"},
	KERN_SEMAPHORE_DESTROYED:      {"KERN_SEMAPHORE_DESTROYED", "(os/kern) semaphore destroyed"},
	KERN_RPC_SERVER_TERMINATED:    {"KERN_RPC_SERVER_TERMINATED", "(os/kern) RPC terminated"},
	KERN_RPC_TERMINATE_ORPHAN:     {"KERN_RPC_TERMINATE_ORPHAN", "(os/kern) terminate orphan"},
	KERN_RPC_CONTINUE_ORPHAN:      {"KERN_RPC_CONTINUE_ORPHAN", "(os/kern) let orphan continue"},
	KERN_NOT_SUPPORTED:            {"KERN_NOT_SUPPORTED", "(os/kern) service not supported"},
	KERN_NODE_DOWN:                {"KERN_NODE_DOWN", "(os/kern) remote node down"},
	KERN_NOT_WAITING:              {"KERN_NOT_WAITING", "(os/kern) thread not waiting"},
	KERN_OPERATION_TIMED_OUT:      {"KERN_OPERATION_TIMED_OUT", "(os/kern) operation timed out"},
	KERN_CODESIGN_ERROR:           {"KERN_CODESIGN_ERROR", "(os/kern) code signing error"},
	KERN_POLICY_STATIC:            {"KERN_POLICY_STATIC", "(os/kern) policy is static"},
	KERN_INSUFFICIENT_BUFFER_SIZE: {"KERN_INSUFFICIENT_BUFFER_SIZE", "(os/kern) insufficient input buffer size"},
	KERN_DENIED:                   {"KERN_DENIED", "(os/kern) denied by security policy"},

	MACH_SEND_IN_PROGRESS:    {"MACH_SEND_IN_PROGRESS", "(ipc/send) send in progress"},
	MACH_SEND_INVALID_DATA:   {"MACH_SEND_INVALID_DATA", "(ipc/send) invalid data"},
	MACH_SEND_INVALID_DEST:   {"MACH_SEND_INVALID_DEST", "(ipc/send) invalid destination port"},
	MACH_SEND_TIMED_OUT:      {"MACH_SEND_TIMED_OUT", "(ipc/send) timed out"},
	MACH_SEND_INTERRUPTED:    {"MACH_SEND_INTERRUPTED", "(ipc/send) interrupted"},
	MACH_SEND_MSG_TOO_SMALL:  {"MACH_SEND_MSG_TOO_SMALL", "(ipc/send) msg too small"},
	MACH_SEND_INVALID_REPLY:  {"MACH_SEND_INVALID_REPLY", "(ipc/send) invalid reply port"},
	MACH_SEND_INVALID_RIGHT:  {"MACH_SEND_INVALID_RIGHT", "(ipc/send) invalid port right"},
	MACH_SEND_INVALID_NOTIFY: {"MACH_SEND_INVALID_NOTIFY", "(ipc/send) invalid notify port"},
	MACH_SEND_INVALID_MEMORY: {"MACH_SEND_INVALID_MEMORY", "(ipc/send) invalid memory"},
	MACH_SEND_NO_BUFFER:      {"MACH_SEND_NO_BUFFER", "(ipc/send) no msg buffer"},
	MACH_SEND_TOO_LARGE:      {"MACH_SEND_TOO_LARGE", "(ipc/send) msg too large"},
	MACH_SEND_INVALID_TYPE:   {"MACH_SEND_INVALID_TYPE", "(ipc/send) invalid msg-type"},
	MACH_SEND_INVALID_HEADER: {"MACH_SEND_INVALID_HEADER", "(ipc/send) invalid msg-header"},

	MACH_RCV_IN_PROGRESS:    {"MACH_RCV_IN_PROGRESS", "(ipc/rcv) receive in progress"},
	MACH_RCV_INVALID_NAME:   {"MACH_RCV_INVALID_NAME", "(ipc/rcv) invalid name"},
	MACH_RCV_TIMED_OUT:      {"MACH_RCV_TIMED_OUT", "(ipc/rcv) timed out"},
	MACH_RCV_TOO_LARGE:      {"MACH_RCV_TOO_LARGE", "(ipc/rcv) msg too large"},
	MACH_RCV_INTERRUPTED:    {"MACH_RCV_INTERRUPTED", "(ipc/rcv) interrupted"},
	MACH_RCV_PORT_CHANGED:   {"MACH_RCV_PORT_CHANGED", "(ipc/rcv) port changed"},
	MACH_RCV_INVALID_NOTIFY: {"MACH_RCV_INVALID_NOTIFY", "(ipc/rcv) invalid notify port"},
	MACH_RCV_INVALID_DATA:   {"MACH_RCV_INVALID_DATA", "(ipc/rcv) invalid data"},
	MACH_RCV_PORT_DIED:      {"MACH_RCV_PORT_DIED", "(ipc/rcv) port died"},

	MIG_TYPE_ERROR:      {"MIG_TYPE_ERROR", "(ipc/mig) client type check failure"},
	MIG_REPLY_MISMATCH:  {"MIG_REPLY_MISMATCH", "(ipc/mig) wrong reply message ID"},
	MIG_REMOTE_ERROR:    {"MIG_REMOTE_ERROR", "(ipc/mig) server detected error"},
	MIG_BAD_ID:          {"MIG_BAD_ID", "(ipc/mig) bad request message ID"},
	MIG_BAD_ARGUMENTS:   {"MIG_BAD_ARGUMENTS", "(ipc/mig) server type check failure"},
	MIG_NO_REPLY:        {"MIG_NO_REPLY", "(ipc/mig) no reply should be sent"},
	MIG_EXCEPTION:       {"MIG_EXCEPTION", "(ipc/mig) server raised exception"},
	MIG_ARRAY_TOO_LARGE: {"MIG_ARRAY_TOO_LARGE", "(ipc/mig) array not large enough"},
	MIG_SERVER_DIED:     {"MIG_SERVER_DIED", "(ipc/mig) server died"},
	MIG_TRAILER_ERROR:   {"MIG_TRAILER_ERROR", "(ipc/mig) unknown trailer format"},
}

// Name returns the constant's name ("KERN_FAILURE"), or "kern_return(0x...)"
// for a code machtrace does not know.
func (k KernReturn) Name() string {
	if ki, ok := kernTable[k]; ok {
		return ki.name
	}
	return fmt.Sprintf("kern_return(%#x)", uint32(k))
}

// Message returns Apple's mach_error_string text for the code, or
// "unknown error code" (what mach_error_string says) for other codes.
func (k KernReturn) Message() string {
	if ki, ok := kernTable[k]; ok {
		return ki.msg
	}
	return "unknown error code"
}

// Error implements error: "KERN_FAILURE (5): (os/kern) failure".
func (k KernReturn) Error() string {
	return fmt.Sprintf("%s (%d): %s", k.Name(), int32(k), k.Message())
}

// Is maps codes onto the package's semantic sentinels, so that
// errors.Is(KERN_TERMINATED, ErrGone) holds.
func (k KernReturn) Is(target error) bool {
	switch target {
	case ErrGone:
		return k == KERN_TERMINATED || k == MACH_SEND_INVALID_DEST || k == KERN_INVALID_NAME
	case ErrUnmapped:
		return k == KERN_INVALID_ADDRESS
	case ErrProtection:
		return k == KERN_PROTECTION_FAILURE || k == KERN_NO_ACCESS
	}
	return false
}

// Semantic sentinels that Mach codes map onto (see KernReturn.Is).
var (
	// ErrGone: the task or thread the port named is dead (KERN_TERMINATED,
	// MACH_SEND_INVALID_DEST, KERN_INVALID_NAME).
	ErrGone = errors.New("mach object is gone")
	// ErrUnmapped: an address range is not (fully) mapped (KERN_INVALID_ADDRESS).
	ErrUnmapped = errors.New("address not mapped")
	// ErrProtection: the memory or operation is protected
	// (KERN_PROTECTION_FAILURE, KERN_NO_ACCESS).
	ErrProtection = errors.New("protection failure")
	// ErrUnsupportedState: a thread-state flavor does not apply to this
	// architecture or machine.
	ErrUnsupportedState = errors.New("unsupported thread state flavor")
)

// KernError is a failed Mach call: the routine's name and its code.
type KernError struct {
	Op   string     // the Mach routine, "task_for_pid"
	Code KernReturn // never KERN_SUCCESS
}

// Error returns "task_for_pid: KERN_FAILURE (5): (os/kern) failure".
func (e *KernError) Error() string { return e.Op + ": " + e.Code.Error() }

// Unwrap returns the code, so errors.Is matches KernReturn constants and,
// through KernReturn.Is, the semantic sentinels.
func (e *KernError) Unwrap() error { return e.Code }

// kernErr returns nil for KERN_SUCCESS and a *KernError otherwise. The cgo
// wrappers call it with the raw kern_return_t.
func kernErr(op string, kr int32) error {
	if kr == 0 {
		return nil
	}
	return &KernError{Op: op, Code: KernReturn(kr)}
}

// IsThreadGone reports whether err says a thread died between listing and
// use: KERN_INVALID_ARGUMENT (the port no longer converts to a thread),
// KERN_TERMINATED or MACH_SEND_INVALID_DEST. Samplers treat these as "skip this
// thread" rather than failure.
func IsThreadGone(err error) bool {
	return errors.Is(err, KERN_INVALID_ARGUMENT) || errors.Is(err, KERN_TERMINATED) || errors.Is(err, MACH_SEND_INVALID_DEST)
}
