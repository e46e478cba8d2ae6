package main

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchRecords is how many records one op of BenchmarkEmbeddedKafkaMemory
// pushes through the embedded broker.
const benchRecords = 10_000_000

// BenchmarkEmbeddedKafkaMemory pushes 10 million order events, as
// order-service builds them, through the embedded broker started the way
// flowlab starts it, first without retention, the baseline, and then with
// the shortest retention flowlab takes (1 s). It reports the Go heap in use
// (after a GC) and the process's RSS (after returning free memory to the OS)
// before the first record, after every million (logged) and at the end, and
// the retention run's end as a ratio of the baseline's. Run it with
// -benchtime 1x: one op is the whole 10 million.
func BenchmarkEmbeddedKafkaMemory(b *testing.B) {
	var baseline memSample
	b.Run("retention=off", func(b *testing.B) {
		for range b.N {
			baseline = pushThroughKafka(b, 0)
		}
	})
	b.Run("retention=1s", func(b *testing.B) {
		var end memSample
		for range b.N {
			end = pushThroughKafka(b, time.Second)
		}
		if baseline.heap > 0 {
			b.ReportMetric(float64(end.heap)/float64(baseline.heap), "heap-end/off")
			b.ReportMetric(float64(end.rss)/float64(baseline.rss), "rss-end/off")
		}
	})
}

// memSample is the heap in use and the RSS, in bytes.
type memSample struct{ heap, rss uint64 }

func sampleMemory(b *testing.B) memSample {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	var rss uint64
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			rss = kb * 1024
		}
	}
	return memSample{heap: ms.HeapInuse, rss: rss}
}

func pushThroughKafka(b *testing.B, retention time.Duration) memSample {
	b.StopTimer()
	k, err := startKafka("127.0.0.1:0", retention)
	if err != nil {
		b.Fatal(err)
	}
	defer k.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.DefaultProduceTopic("orders"),
		kgo.ProducerLinger(5*time.Millisecond), kgo.DisableIdempotentWrite(),
		// Uncompressed, as order-service's records are when it flushes
		// after each one: a record of its own compresses to nothing less.
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		b.Fatal(err)
	}
	var failed atomic.Int64
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			failed.Add(1)
		}
	}
	start := sampleMemory(b)
	samples := []memSample{start}
	b.StartTimer()
	began := time.Now()
	for n := range benchRecords {
		cl.Produce(ctx, orderEvent(uint64(n+1)), promise)
		if (n+1)%1_000_000 == 0 {
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			samples = append(samples, sampleMemory(b))
			b.StartTimer()
		}
	}
	took := time.Since(began)
	b.StopTimer()
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d records failed", f)
	}
	end := samples[len(samples)-1]
	var peak memSample
	var heaps []string
	for _, s := range samples {
		peak.heap, peak.rss = max(peak.heap, s.heap), max(peak.rss, s.rss)
		heaps = append(heaps, strconv.FormatUint(s.heap>>20, 10))
	}
	b.Logf("heap in use (MiB) before and after each million records: %s", strings.Join(heaps, " "))
	b.ReportMetric(float64(benchRecords)/took.Seconds(), "records/s")
	b.ReportMetric(float64(start.heap)/(1<<20), "heap-start-MiB")
	b.ReportMetric(float64(end.heap)/(1<<20), "heap-end-MiB")
	b.ReportMetric(float64(peak.heap)/(1<<20), "heap-max-MiB")
	b.ReportMetric(float64(start.rss)/(1<<20), "rss-start-MiB")
	b.ReportMetric(float64(end.rss)/(1<<20), "rss-end-MiB")
	b.ReportMetric(float64(peak.rss)/(1<<20), "rss-max-MiB")
	return end
}

// orderEvent is about the record order-service sends for event n: the order
// id as key and the article's JSON event as value.
func orderEvent(n uint64) *kgo.Record {
	order := strconv.FormatUint(n/3+1, 10)
	kind := [3]string{"order_placed", "order_paid", "order_shipped"}[n%3]
	return &kgo.Record{Key: []byte(order), Value: []byte(`{"order_id":` + order + `,"type":"` + kind + `","data":{"qty":` + strconv.FormatUint(1+n%3, 10) + `}}`)}
}
