package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// ListEach lists Applications like List, but hands each one to each as it
// is decoded from the response instead of returning them all: the
// response is read as a stream, so the memory a list needs is one
// Application and what each keeps of it, not the whole response (32 KiB
// an app of 50 resources, 320 MB for 10,000) plus every app decoded whole.
// That lets a list of every Application be one request the API server
// serves from its watch cache (resourceVersion 0), rather than pages read
// from etcd. A response that is a page (its continue token set) is
// followed by the next. It returns the list's metadata.
func (a apps) ListEach(ctx context.Context, opts metav1.ListOptions, each func(*v1alpha1.Application) error) (*metav1.ListMeta, error) {
	for {
		body, err := a.c.rest.Get().Namespace(a.ns).Resource(a.name).VersionedParams(&opts, a.c.params).Stream(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", a.name, err)
		}
		meta, err := decodeList(body, func(dec *json.Decoder) error {
			app := &v1alpha1.Application{}
			if err := dec.Decode(app); err != nil {
				return err
			}
			return each(app)
		})
		_ = body.Close()
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", a.name, err)
		}
		if meta.Continue == "" {
			return meta, nil
		}
		// A continued list takes its resource version from the token.
		opts.Continue, opts.ResourceVersion, opts.ResourceVersionMatch = meta.Continue, "", ""
	}
}

// decodeList reads a Kubernetes list from r, its metadata whole and its
// items one by one with item, whatever the order of the keys (the API
// server writes a custom resource's list with sorted keys: items before
// metadata).
func decodeList(r io.Reader, item func(*json.Decoder) error) (*metav1.ListMeta, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	meta := &metav1.ListMeta{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("decode list: %w", err)
		}
		switch key, _ := tok.(string); key {
		case "metadata":
			if err := dec.Decode(meta); err != nil {
				return nil, fmt.Errorf("decode list metadata: %w", err)
			}
		case "items":
			if err := decodeItems(dec, item); err != nil {
				return nil, err
			}
		default:
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, fmt.Errorf("decode list: %w", err)
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return nil, err
	}
	return meta, nil
}

// decodeItems reads the items array (or null) with item.
func decodeItems(dec *json.Decoder, item func(*json.Decoder) error) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decode list items: %w", err)
	}
	if tok == nil {
		return nil // "items": null
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("decode list items: got %v, want an array", tok)
	}
	for i := 0; dec.More(); i++ {
		if err := item(dec); err != nil {
			return fmt.Errorf("decode list item %d: %w", i, err)
		}
	}
	return expectDelim(dec, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("decode list: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("decode list: got %v, want %q", tok, want)
	}
	return nil
}
