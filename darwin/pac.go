package darwin

// DefaultVABits is the user virtual-address width assumed on arm64 when the
// sysctl machdep.virtual_address_size cannot be read (the value on current
// Apple Silicon Macs).
const DefaultVABits = 47

// PACMask returns the mask that keeps the address bits of a pointer whose
// upper bits may hold a pointer-authentication code: vaBits low bits set.
// A vaBits of 0 or out of range selects DefaultVABits.
func PACMask(vaBits uint) uint64 {
	if vaBits == 0 || vaBits > 64 {
		vaBits = DefaultVABits
	}
	if vaBits == 64 {
		return ^uint64(0)
	}
	return ^uint64(0) >> (64 - vaBits)
}

// StripPAC removes a pointer-authentication signature from a code or data
// address of an arm64e process. It is a no-op for unsigned pointers, so it is
// safe to apply to every return address and to PC, LR and FP.
func StripPAC(addr, mask uint64) uint64 { return addr & mask }
