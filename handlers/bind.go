package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/render"

	"github.com/memconnect/memconnect/internal/apierr"
)

// Bind reads r's body into v with [render.Bind], which then runs v's Bind
// method, where the fields are validated. Unlike a bare render.Bind it:
//
//   - treats an empty body as {}, so that every field of v may be left out
//     of a request and a client may send no body at all;
//   - requires "Content-Type: application/json" for a body that is not
//     empty (render.Bind would also decode XML and forms, and a JSON
//     content type makes a browser ask before sending across origins);
//   - refuses anything after the JSON value.
//
// v's JSON decoding must refuse unknown fields (see [connectRequest]'s
// UnmarshalJSON, built on [json.Decoder.DisallowUnknownFields]); the
// package-wide render.Decode is left alone, as it belongs to the host.
//
// Errors are [*apierr.Error]s with [apierr.CodeInvalidRequest] and a message naming the
// field or the position at fault; a body over the size limit keeps its
// [*http.MaxBytesError], which [toError] answers with 413.
func bind(r *http.Request, v render.Binder) error {
	if r.Body == nil || r.Body == http.NoBody {
		return bindFields(r, v)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return apierr.Wrap(apierr.CodeInvalidRequest, err, "The request body could not be read.")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return bindFields(r, v)
	}
	if render.GetRequestContentType(r) != render.ContentTypeJSON {
		return apierr.Errorf(apierr.CodeInvalidRequest, "Send the body as JSON, with the header \"Content-Type: application/json\".")
	}
	if err := onlyOneValue(body); err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err := render.Bind(r, v); err != nil {
		return bindError(err)
	}
	return nil
}

// bindFields validates v as decoded from an empty body.
func bindFields(r *http.Request, v render.Binder) error {
	if err := v.Bind(r); err != nil {
		return bindError(err)
	}
	return nil
}

// onlyOneValue reports an error unless body is one JSON value followed by
// nothing but white space. Syntax errors inside the value are left to the
// decoder proper.
func onlyOneValue(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil // reported with its position by render.Bind
	}
	if len(bytes.TrimSpace(body[dec.InputOffset():])) != 0 {
		return apierr.Errorf(apierr.CodeInvalidRequest, "The body must be one JSON object, with nothing after it.")
	}
	return nil
}

// strictUnmarshal decodes data into v refusing fields v does not have.
func strictUnmarshal(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// bindError turns a decoding or validation error into an [*apierr.Error] with
// [apierr.CodeInvalidRequest] whose message says what is wrong, for a person.
func bindError(err error) error {
	var (
		e       *apierr.Error
		maxErr  *http.MaxBytesError
		syntax  *json.SyntaxError
		typeErr *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr), errors.As(err, &e):
		return err
	case errors.As(err, &syntax):
		return apierr.Wrap(apierr.CodeInvalidRequest, err, fmt.Sprintf("The body is not valid JSON (at byte %d).", syntax.Offset))
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return apierr.Wrap(apierr.CodeInvalidRequest, err, "The body must be a JSON object.")
		}
		return apierr.Wrap(apierr.CodeInvalidRequest, err, fmt.Sprintf("The field %q must be a JSON %s.", typeErr.Field, jsonKind(typeErr.Type.Kind().String())))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.Wrap(apierr.CodeInvalidRequest, err, "The body is not valid JSON: it ends too early.")
	}
	// encoding/json has no type for an unknown field: its message is
	// `json: unknown field "name"`.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if n, uerr := strconv.Unquote(name); uerr == nil {
			name = n
		}
		return apierr.Wrap(apierr.CodeInvalidRequest, err, fmt.Sprintf("The field %s is not known.", quoteField(name)))
	}
	return apierr.Wrap(apierr.CodeInvalidRequest, err, "The body is not valid JSON.")
}

// jsonKind names the JSON type of a Go kind for a message.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "slice", "array":
		return "array"
	case "struct", "map":
		return "object"
	default:
		return "number"
	}
}

// quoteField quotes a field name sent by a client for a message, escaping
// what is not printable ASCII and cutting it to a bounded length.
func quoteField(name string) string {
	const maxRunes = 40
	if r := []rune(name); len(r) > maxRunes {
		return strconv.QuoteToASCII(string(r[:maxRunes])) + "..."
	}
	return strconv.QuoteToASCII(name)
}
