package api

import "fmt"

// MaxTableNameLen is the longest table name accepted.
const MaxTableNameLen = 128

// ValidTableName checks a table name: [A-Za-z_][A-Za-z0-9_]*, at most
// MaxTableNameLen bytes.
func ValidTableName(name string) error {
	if name == "" {
		return fmt.Errorf("table name is empty")
	}
	if len(name) > MaxTableNameLen {
		return fmt.Errorf("table name is %d bytes long, the limit is %d", len(name), MaxTableNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return fmt.Errorf("invalid table name %q: byte %d (%q) is not allowed; use letters, digits and _, not starting with a digit", name, i+1, c)
		}
	}
	return nil
}
