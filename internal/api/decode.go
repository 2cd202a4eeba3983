package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/deploy"
)

// MaxBodyBytes bounds every request body; larger bodies get 413.
const MaxBodyBytes = 64 << 10

// decodeBody reads exactly one JSON object from r's body into v. Unknown
// fields, keys given twice, trailing data, a wrong content type and
// oversized bodies are errors with the status they deserve.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return errorf(http.StatusUnsupportedMediaType, CodeMediaType,
				fmt.Sprintf("content type %q: want application/json", ct))
		}
	}
	body := http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	return decodeJSON(body, v)
}

// decodeJSON decodes exactly one JSON value from rd into v, rejecting
// unknown fields, keys given twice and anything after the value.
func decodeJSON(rd io.Reader, v any) error {
	data, err := io.ReadAll(rd)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return errorf(http.StatusRequestEntityTooLarge, CodeTooLarge,
				fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
		}
		return errorf(http.StatusBadRequest, CodeInvalid, "read request body: "+err.Error())
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, CodeInvalid, "request body is empty: want a JSON object")
		}
		return errorf(http.StatusBadRequest, CodeInvalid, "request body: "+err.Error())
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errorf(http.StatusBadRequest, CodeInvalid, "request body: want exactly one JSON value")
	}
	if err := duplicateKeys(data); err != nil {
		return errorf(http.StatusBadRequest, CodeInvalid, "request body: "+err.Error())
	}
	return nil
}

// validServiceName reports whether s matches [a-z0-9-]{1,63}.
func validServiceName(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkVersion refuses, as 400, a version the controller would refuse
// (deploy.ValidateVersion), so the client hears it at once; a version is
// otherwise the runtime's business (a path, a tag, an AMI).
func checkVersion(v string) error {
	if err := deploy.ValidateVersion(v); err != nil {
		return errorf(http.StatusBadRequest, CodeInvalid, strings.TrimPrefix(err.Error(), deploy.ErrInvalid.Error()+": "))
	}
	return nil
}

// checkStrategy accepts "" (the configured strategy) or a name like
// "all-at-once"; whether the name exists is the backend's decision.
func checkStrategy(s string) error {
	if s != "" && !validServiceName(s) {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("strategy %q: want a name of a-z, 0-9 and -", s))
	}
	return nil
}

// checkAddr accepts host:port with a numeric port in 1-65535.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil || host == "" || len(a) > 300 {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("addr %q: want host:port", a))
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("addr %q: port must be 1-65535", a))
	}
	return nil
}
