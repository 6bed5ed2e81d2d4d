package introspect

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Table is one table of the agent's OpenFlow pipeline. The pipeline owns the
// list (the agent passes it to the server), so names and numbers here are
// always those of the flows installed.
type Table struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
	// What is one line on what the table does.
	What string `json:"what,omitempty"`
}

// Tables is a pipeline's table list.
type Tables []Table

// Name is the name of table id, or "" if the pipeline has no such table.
func (ts Tables) Name(id int) string {
	for _, t := range ts {
		if t.ID == id {
			return t.Name
		}
	}
	return ""
}

// Resolve reads a table given by number or by name (case-insensitive). An
// unknown table is an error listing the pipeline's tables.
func (ts Tables) Resolve(s string) (Table, error) {
	s = strings.TrimSpace(s)
	if id, err := strconv.Atoi(s); err == nil {
		for _, t := range ts {
			if t.ID == id {
				return t, nil
			}
		}
		if id >= 0 && id < 255 {
			// A table the pipeline does not use is empty, not an error.
			return Table{ID: id}, nil
		}
		return Table{}, fmt.Errorf("table %d: OpenFlow tables are numbered 0 to 254; %s", id, ts.list())
	}
	for _, t := range ts {
		if strings.EqualFold(t.Name, s) {
			return t, nil
		}
	}
	return Table{}, fmt.Errorf("unknown table %q: %s", s, ts.list())
}

func (ts Tables) list() string {
	sorted := append(Tables(nil), ts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	var parts []string
	for _, t := range sorted {
		parts = append(parts, fmt.Sprintf("%d %s", t.ID, t.Name))
	}
	if len(parts) == 0 {
		return "the agent reported no table names; give the table's number"
	}
	return "the pipeline's tables are " + strings.Join(parts, ", ")
}
