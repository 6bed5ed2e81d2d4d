package rules

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// WriteFile stores a node's rules where the flow sync (the agent's and
// each CNI invocation's) reads them; written whole and renamed into place,
// so a reader never sees half a file.
func WriteFile(path string, rs *Set) error {
	data, err := json.Marshal(rs)
	if err != nil {
		return err
	}
	tmp := path + ".tmp." + strconv.Itoa(os.Getpid())
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return fmt.Errorf("write policy rules: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write policy rules: %w", err)
	}
	return nil
}

// ReadFile reads what WriteFile wrote. A missing file is no rules
// (nil, nil): before the agent's first computation nothing is isolated.
func ReadFile(path string) (*Set, error) {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read policy rules: %w", err)
	}
	var rs Set
	if err := json.Unmarshal(data, &rs); err != nil {
		return nil, fmt.Errorf("policy rules in %s are unreadable (the agent rewrites them): %w", path, err)
	}
	return &rs, nil
}
