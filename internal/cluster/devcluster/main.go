// Command devcluster runs an N-node NATS JetStream cluster of embedded
// nats-server instances on loopback, for developing and trying plumb serve
// in cluster mode without Docker:
//
//	go run ./internal/cluster/devcluster --nodes 3 --dir /tmp/plumb-nats
//	plumb serve --dir examples --sandbox --nats nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224 --addr 127.0.0.1:8081
//
// Node i (from 0) listens for clients on --port+i and for routes on
// --cluster-port+i, and keeps its store in DIR/n<i+1>, so a restart
// carries on. It prints the --nats value, then runs until SIGINT or
// SIGTERM. scripts/dev-cluster.sh wraps it.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func main() {
	nodes := flag.Int("nodes", 3, "number of nodes")
	dir := flag.String("dir", filepath.Join(os.TempDir(), "plumb-dev-cluster"), "store directory (one subdirectory per node)")
	port := flag.Int("port", 4222, "client port of the first node (the others follow)")
	clusterPort := flag.Int("cluster-port", 6222, "route port of the first node (the others follow)")
	host := flag.String("host", "127.0.0.1", "address to listen on")
	syncAlways := flag.Bool("sync-always", false, "fsync every write (slower; survives power loss)")
	flag.Parse()
	if *nodes < 1 || *nodes > 9 {
		fmt.Fprintln(os.Stderr, "devcluster: --nodes must be 1..9")
		os.Exit(2)
	}
	var routes []*url.URL
	if *nodes > 1 {
		for i := range *nodes {
			routes = append(routes, &url.URL{Scheme: "nats", Host: *host + ":" + strconv.Itoa(*clusterPort+i)})
		}
	}
	servers := make([]*server.Server, *nodes)
	var urls []string
	var wg sync.WaitGroup
	errs := make([]error, *nodes)
	for i := range *nodes {
		name := "n" + strconv.Itoa(i+1)
		opts := &server.Options{
			ServerName: name,
			Host:       *host,
			Port:       *port + i,
			JetStream:  true,
			StoreDir:   filepath.Join(*dir, name),
			SyncAlways: *syncAlways,
			NoSigs:     true,
		}
		if *nodes > 1 {
			opts.Cluster = server.ClusterOpts{Name: "plumb-dev", Host: *host, Port: *clusterPort + i}
			opts.Routes = routes
		}
		urls = append(urls, "nats://"+*host+":"+strconv.Itoa(*port+i))
		srv, err := server.NewServer(opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "devcluster: %s: %v\n", name, err)
			os.Exit(1)
		}
		srv.ConfigureLogger()
		servers[i] = srv
		// Start all before waiting on any: a node waits for its routes.
		wg.Go(func() {
			srv.Start()
			if !srv.ReadyForConnections(30 * time.Second) {
				errs[i] = fmt.Errorf("%s not ready after 30s", name)
			}
		})
	}
	wg.Wait()
	stop := func() {
		for _, s := range servers {
			s.Shutdown()
		}
		for _, s := range servers {
			s.WaitForShutdown()
		}
	}
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, "devcluster:", err)
			stop()
			os.Exit(1)
		}
	}
	fmt.Printf("NATS JetStream cluster of %d node(s) on %s, stores under %s\n", *nodes, *host, *dir)
	fmt.Printf("  plumb serve --nats %s ...\n", strings.Join(urls, ","))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Println("stopping")
	stop()
}
