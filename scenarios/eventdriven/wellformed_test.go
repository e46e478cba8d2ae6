package eventdriven_test

import (
	"encoding/json"
	"testing"

	"flowlab/scenarios/eventdriven"
)

// generalWellFormed is the consumer's check without its quick path.
func generalWellFormed(body []byte) bool {
	var e struct {
		Type string `json:"type"`
		Data struct {
			OrderID json.RawMessage `json:"order_id"`
		} `json:"data"`
	}
	return json.Unmarshal(body, &e) == nil && e.Type == "order_placed" && len(e.Data.OrderID) > 0 && string(e.Data.OrderID) != "null"
}

// remarshal decodes an order event into the article's fields and encodes it
// again with json.Marshal.
func remarshal(tb testing.TB, body []byte) []byte {
	tb.Helper()
	var e struct {
		Type string `json:"type"`
		Data struct {
			OrderID uint64 `json:"order_id"`
			Items   []struct {
				SKU string `json:"sku"`
				Qty int    `json:"qty"`
			} `json:"items"`
			Total float64 `json:"total"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		tb.Fatalf("%s: %v", body, err)
	}
	again, err := json.Marshal(e)
	if err != nil {
		tb.Fatal(err)
	}
	return again
}

// Every event order-service writes is what json.Marshal would write and takes
// the consumer's quick path, and the quick path never says well-formed where
// the general one would not.
func TestWellFormedQuickPathAgreesWithTheGeneralOne(t *testing.T) {
	general := generalWellFormed
	for seq := range uint64(2000) {
		body, poison := eventdriven.OrderEvent(seq, 0)
		if again := remarshal(t, body); string(again) != string(body) {
			t.Fatalf("order-service wrote\n%s\njson.Marshal writes\n%s", body, again)
		}
		if poison || !eventdriven.AsOrderServiceWrites(body) || !general(body) {
			t.Fatalf("order-service's event %s: quick path %v, general %v", body, eventdriven.AsOrderServiceWrites(body), general(body))
		}
		if cut := body[:len(body)/2]; eventdriven.WellFormed(cut) {
			t.Fatalf("poison event %s taken as well-formed", cut)
		}
	}
	for _, c := range []struct {
		body string
		want bool
	}{
		{`{"type":"order_placed","data":{"order_id":7}}`, true},
		{`{"type": "order_placed", "data": {"order_id": "A-7"}}`, true},
		{`{"TYPE":"order_placed","data":{"order_id":7}}`, true},
		{`{"type":"order_placed","data":{"order_id":null}}`, false},
		{`{"type":"order_placed","data":{"order_id":7,"items":[{"sku":"mug","qty":1}],"total":9.5},"type":"refund"}`, false},
		{`{"type":"order_placed","data":{"order_id":7,"items":[{"sku":"mug","qty":1}],"total":9.5},"data":{"order_id":null}}`, false},
		{`{"type":"order_placed","data":{"order_id":07,"items":[{"sku":"mug","qty":1}],"total":9.5}}`, false},
		{`{"type":"order_placed","data":{"order_id":7,"items":[{"sku":"mug","qty":1}],"total":9.}}`, false},
		{`{"type":"order_placed","data":{"order_id":7,"items":[{"sku":"mug","qty":1}],"total":9.5}} `, true},
		{`{"type":"order_placed","data":{"order_id":7,"items":[{"sku":"mug","qty":1}],"total":9.5}}x`, false},
		{`{"type":"order_placed","data":{"order_id":7,"items":[],"total":0}}`, true},
		{`not json`, false},
		{``, false},
	} {
		if got := eventdriven.WellFormed([]byte(c.body)); got != c.want || got != general([]byte(c.body)) {
			t.Errorf("%s: well-formed %v, want %v", c.body, got, c.want)
		}
	}
}

// Whatever the bytes, the quick path says well-formed only where the general
// check does.
func FuzzWellFormedQuickPath(f *testing.F) {
	for seq := range uint64(5) {
		body, _ := eventdriven.OrderEvent(seq*997, 0)
		f.Add(body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if eventdriven.AsOrderServiceWrites(body) && !generalWellFormed(body) {
			t.Errorf("%q: the quick path says well-formed, json.Unmarshal does not", body)
		}
		if eventdriven.WellFormed(body) != generalWellFormed(body) {
			t.Errorf("%q: well-formed %v, the general check %v", body, eventdriven.WellFormed(body), generalWellFormed(body))
		}
	})
}
