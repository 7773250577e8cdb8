package main

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/protobuf/proto"
)

// frame is a message passed through undecoded: the calls the gateway forwards to Triton as they are.
type frame struct{ data []byte }

// codec replaces gRPC's "proto" codec: protobuf messages as usual (google.golang.org/protobuf),
// frames as their bytes.
type codec struct{}

func (codec) Name() string { return "proto" }

func (codec) Marshal(v interface{}) ([]byte, error) {
	switch m := v.(type) {
	case *frame:
		return m.data, nil
	case proto.Message:
		return proto.Marshal(m)
	}
	return nil, fmt.Errorf("cannot marshal %T", v)
}

func (codec) Unmarshal(data []byte, v interface{}) error {
	switch m := v.(type) {
	case *frame:
		m.data = append([]byte(nil), data...)
		return nil
	case proto.Message:
		return proto.Unmarshal(data, m)
	}
	return fmt.Errorf("cannot unmarshal into %T", v)
}

func init() { encoding.RegisterCodec(codec{}) }
