package main

import (
	"bytes"
	"compress/zlib"
	"io"
	"testing"

	"google.golang.org/grpc/encoding"
)

// A message deflated by the registered "deflate" compressor is zlib's format (grpc-core's), and
// what zlib writes inflates back through it; a pooled writer is reused cleanly.
func TestDeflateIsZlibsFormatBothWays(t *testing.T) {
	compressor := encoding.GetCompressor("deflate")
	if compressor == nil || encoding.GetCompressor("gzip") == nil {
		t.Fatal("gzip and deflate must be registered")
	}
	message := bytes.Repeat([]byte("a KServe v2 message "), 100)
	for round := 0; round < 2; round++ {
		var written bytes.Buffer
		writer, err := compressor.Compress(&written)
		if err != nil {
			t.Fatal(err)
		}
		writer.Write(message)
		if err := writer.Close(); err != nil {
			t.Fatal(err)
		}
		reader, err := zlib.NewReader(&written)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := io.ReadAll(reader); !bytes.Equal(got, message) {
			t.Fatalf("round %d: zlib read back %d bytes", round, len(got))
		}
	}
	var zlibbed bytes.Buffer
	writer := zlib.NewWriter(&zlibbed)
	writer.Write(message)
	writer.Close()
	reader, err := compressor.Decompress(&zlibbed)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(reader); !bytes.Equal(got, message) {
		t.Fatalf("inflated %d bytes", len(got))
	}
}
