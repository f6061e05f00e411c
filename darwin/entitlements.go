package darwin

import (
	_ "embed"
	"encoding/xml"
	"strings"
)

// DebuggerEntitlementsPlist is the entitlements file `machtrace setup` signs
// the binary with: com.apple.security.cs.debugger, and
// com.apple.security.get-task-allow so that the hardened-runtime signature
// does not make machtrace itself untraceable (selftest traces a copy of it).
//
//go:embed entitlements.plist
var DebuggerEntitlementsPlist []byte

// DebuggerEntitlement is the entitlement that lets a non-root tracer take
// the task ports of its own user's processes.
const DebuggerEntitlement = "com.apple.security.cs.debugger"

// HasEntitlement reports whether an XML entitlements plist (as `codesign -d
// --entitlements - --xml` prints it) sets key to true.
func HasEntitlement(plist []byte, key string) bool {
	d := xml.NewDecoder(strings.NewReader(string(plist)))
	d.Strict = false
	var (
		inKey   bool
		keyText strings.Builder
		pending bool // the last <key> was ours; the next value decides
	)
	for {
		tok, err := d.Token()
		if err != nil {
			return false // io.EOF or malformed: the key was not set to true
		}
		switch el := tok.(type) {
		case xml.StartElement:
			switch {
			case el.Name.Local == "key":
				inKey = true
				keyText.Reset()
				pending = false
			case pending:
				return el.Name.Local == "true"
			}
		case xml.CharData:
			if inKey {
				keyText.Write(el)
			}
		case xml.EndElement:
			if el.Name.Local == "key" && inKey {
				inKey = false
				pending = strings.TrimSpace(keyText.String()) == key
			}
		}
	}
}
