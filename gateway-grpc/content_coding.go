// gRPC message compression (grpc-encoding), the twin of gateway/content_coding.py's HTTP content
// codings, as Triton accepts it (grpc-core's "gzip" and "deflate"): tritonclient's
// infer(..., compression_algorithm="gzip" or "deflate") works against the gateway as against
// Triton. An answer is compressed as its request was. grpc-go stops reading a message once it
// inflates past the receive limit (GATEWAY_MAX_BODY_BYTES), so a small bomb cannot fill memory.
package main

import (
	"compress/zlib"
	"io"
	"sync"

	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // registers "gzip"
)

// deflate is grpc-core's "deflate" encoding: zlib's format (RFC 1950; grpc-core's
// message_compress.cc deflates with window bits 15, the zlib wrapper), which grpc-go lacks.
type deflate struct{ writers sync.Pool }

func (d *deflate) Name() string { return "deflate" }

func (d *deflate) Compress(w io.Writer) (io.WriteCloser, error) {
	if writer, ok := d.writers.Get().(*zlib.Writer); ok {
		writer.Reset(w)
		return &pooledWriter{writer, &d.writers}, nil
	}
	return &pooledWriter{zlib.NewWriter(w), &d.writers}, nil
}

func (d *deflate) Decompress(r io.Reader) (io.Reader, error) { return zlib.NewReader(r) }

// pooledWriter returns its zlib writer to the pool once the message is written.
type pooledWriter struct {
	*zlib.Writer
	pool *sync.Pool
}

func (w *pooledWriter) Close() error {
	err := w.Writer.Close()
	w.pool.Put(w.Writer)
	return err
}

func init() { encoding.RegisterCompressor(&deflate{}) }
