package darwin

import "github.com/machtrace/machtrace/mach"

// threadTable keeps exactly one send right (one user reference) per live
// thread of a task, keyed by the thread's system-wide 64-bit id.
//
// Every task_threads call hands out one more user reference to each thread
// port, and the same thread always comes back under the same name while a
// reference is held. So after each call the table keeps the reference of a
// thread it has not seen, releases the extra reference of one it has, and
// releases the kept reference of a thread that is no longer listed (its name
// is then a dead name, and may be reused only after that release). Port names
// are therefore never used as long-lived ids.
type threadTable struct {
	byID  map[uint64]mach.Thread
	idOf  map[mach.Thread]uint64
	order []uint64 // ids in task order at the last refresh; order[0] is normally the main thread
}

func newThreadTable() *threadTable {
	return &threadTable{byID: map[uint64]mach.Thread{}, idOf: map[mach.Thread]uint64{}}
}

// refresh reconciles the table with a fresh task_threads list. lookup
// resolves a port the table does not know to its thread id
// (THREAD_IDENTIFIER_INFO); a port whose lookup fails belongs to a thread
// that died meanwhile. refresh returns the references to release with
// mach_port_deallocate.
func (tt *threadTable) refresh(ports []mach.Thread, lookup func(mach.Thread) (uint64, error)) (release []mach.Thread) {
	seen := make(map[mach.Thread]bool, len(ports))
	order := make([]uint64, 0, len(ports))
	for _, p := range ports {
		if seen[p] {
			// Listed twice in one answer: each entry carries a reference.
			release = append(release, p)
			continue
		}
		seen[p] = true
		if id, ok := tt.idOf[p]; ok {
			release = append(release, p) // the extra reference of a known thread
			order = append(order, id)
			continue
		}
		id, err := lookup(p)
		if err != nil {
			release = append(release, p)
			delete(seen, p)
			continue
		}
		if old, ok := tt.byID[id]; ok && old != p {
			// Same thread under a new name: should not happen while we
			// hold a reference, but never keep two.
			release = append(release, old)
			delete(tt.idOf, old)
		}
		tt.byID[id] = p
		tt.idOf[p] = id
		order = append(order, id)
	}
	for p, id := range tt.idOf {
		if !seen[p] {
			release = append(release, p)
			delete(tt.idOf, p)
			delete(tt.byID, id)
		}
	}
	tt.order = order
	return release
}

// port returns the kept right of a thread id.
func (tt *threadTable) port(id uint64) (mach.Thread, bool) {
	p, ok := tt.byID[id]
	return p, ok
}

// drain empties the table and returns every kept reference, for Detach.
func (tt *threadTable) drain() []mach.Thread {
	out := make([]mach.Thread, 0, len(tt.idOf))
	for p := range tt.idOf {
		out = append(out, p)
	}
	tt.byID, tt.idOf, tt.order = map[uint64]mach.Thread{}, map[mach.Thread]uint64{}, nil
	return out
}
