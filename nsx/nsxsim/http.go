package nsxsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// maxBody bounds a request body; a 10,000-route hierarchical call is ~4 MB.
const maxBody = 64 << 20

// methods maps HTTP methods to the handler of one path pattern.
type methods map[string]http.HandlerFunc

// handle registers a path pattern whose unknown methods get NSX's 405 body
// (net/http's own 405 is plain text, which no NSX client expects).
func (s *Simulator) handle(pattern string, m methods) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if h, ok := m[r.Method]; ok {
			h(w, r)
			return
		}
		allowed := make([]string, 0, len(m))
		for k := range m {
			allowed = append(allowed, k)
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, http.StatusMethodNotAllowed, CodeInvalid, fmt.Sprintf("Method %s is not supported for %s.", r.Method, r.URL.Path))
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v) //nolint:errcheck // the client went away
}

func writeError(w http.ResponseWriter, status, code int, msg string, related ...apiErrorBody) {
	writeJSON(w, status, apiErrorBody{
		HTTPStatus: strings.ToUpper(strings.ReplaceAll(http.StatusText(status), " ", "_")),
		ErrorCode:  code, ModuleName: "common-services", ErrorMessage: msg, RelatedErrors: related,
	})
}

func notFound(w http.ResponseWriter, path string) {
	writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("The path=[%s] is invalid", path))
}

func invalid(w http.ResponseWriter, msg string, related ...apiErrorBody) {
	writeError(w, http.StatusBadRequest, CodeInvalid, msg, related...)
}

// decodeBody decodes a JSON request body into v, answering NSX's 400 with a
// message naming the offending field when it is not valid.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		invalid(w, "Could not read the request body.")
		return false
	}
	if len(body) > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, CodeInvalid, fmt.Sprintf("The request body is larger than %d bytes.", maxBody))
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		invalid(w, describeJSONError(err))
		return false
	}
	return true
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(body)"
		}
		return fmt.Sprintf("Field level validation errors: {%s: a JSON %s is not valid here, expected %s}", field, typeErr.Value, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("Invalid JSON in the request body at offset %d: %v", syntaxErr.Offset, syntaxErr)
	}
	return "Invalid JSON in the request body: " + err.Error()
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	case "bool":
		return "a boolean"
	}
	return "a number"
}

// pageParams reads cursor and page_size as NSX does (default and maximum 1000).
func pageParams(w http.ResponseWriter, r *http.Request) (cursor string, size int, ok bool) {
	size = 1000
	if v := r.URL.Query().Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			invalid(w, fmt.Sprintf("page_size %q is not a non-negative integer.", v))
			return "", 0, false
		}
		if n > 0 && n < 1000 {
			size = n
		}
	}
	if c := r.URL.Query().Get("cursor"); c != "" {
		id, err := decodeCursor(c)
		if err != nil {
			invalid(w, fmt.Sprintf("cursor %q is not valid: pass back the cursor of the previous page unchanged.", c))
			return "", 0, false
		}
		cursor = id
	}
	return cursor, size, true
}
