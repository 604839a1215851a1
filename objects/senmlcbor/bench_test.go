package senmlcbor

import (
	"testing"

	"github.com/lwm2md/lwm2md/objects/senml/senmltest"
)

func BenchmarkEncode(b *testing.B) { senmltest.BenchEncode(b, testCodec()) }
func BenchmarkDecode(b *testing.B) { senmltest.BenchDecode(b, testCodec()) }
