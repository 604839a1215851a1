package nodejson_test

import (
	"fmt"

	"github.com/lwm2md/lwm2md/objects"
	"github.com/lwm2md/lwm2md/objects/builtin"
	"github.com/lwm2md/lwm2md/objects/nodejson"
)

func Example() {
	root := objects.MustParsePath("/3/0/9")
	n, err := nodejson.Unmarshal([]byte(`{"value":87}`), root, builtin.Registry())
	if err != nil {
		panic(err)
	}
	b, _ := nodejson.Marshal(root, n)
	fmt.Println(string(b))

	_, err = nodejson.Unmarshal([]byte(`{"value":101}`), root, builtin.Registry())
	fmt.Println(err)
	// Output:
	// {"path":"/3/0/9","type":"integer","value":87}
	// nodejson: /3/0/9: value: value 101 is outside the range "0..100" of resource "Battery Level": value out of range
}

func ExampleMarshalRecords() {
	b, _ := nodejson.MarshalRecords([]objects.Record{
		{Path: objects.MustParsePath("/3303/0/5700"), Value: objects.FloatValue(21.5), Time: 1700000000},
	})
	fmt.Println(string(b))
	// Output:
	// [{"path":"/3303/0/5700","type":"float","value":21.5,"time":1700000000}]
}
