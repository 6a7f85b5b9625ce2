// Package natstest starts real NATS JetStream servers for tests: one node
// or an N-node cluster, in the test process, on loopback ports, each with its
// own store under t.TempDir(). No Docker, no external binaries.
//
// It is a normal (non-_test) package so tests anywhere in plumb can use it.
package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Ready bounds how long StartServer and StartCluster wait for the servers
// (and, for a cluster, a JetStream meta leader).
const Ready = 30 * time.Second

// Node is one nats-server. Stop and Restart it to simulate a lost node.
type Node struct {
	// Name is the server name (n1, n2, ...).
	Name string
	// URL is the client URL, nats://127.0.0.1:port. It stays the same
	// across Restart.
	URL string
	// StoreDir is the JetStream store directory (kept across Restart).
	StoreDir string

	opts *server.Options
	mu   sync.Mutex
	srv  *server.Server
}

// Server returns the running server, or nil while the node is stopped.
func (n *Node) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// Stop shuts the node down (as a lost node: clients and routes see the
// connections close) and waits until it has. Stopping a stopped node does
// nothing.
func (n *Node) Stop() {
	n.mu.Lock()
	srv := n.srv
	n.srv = nil
	n.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts a stopped node again on the same ports and store.
func (n *Node) Restart(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv != nil {
		t.Fatalf("natstest: restart %s: still running", n.Name)
	}
	srv, err := start(n.opts.Clone())
	if err != nil {
		t.Fatalf("natstest: restart %s: %v", n.Name, err)
	}
	n.srv = srv
}

func start(opts *server.Options) (*server.Server, error) {
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	srv.Start()
	if !srv.ReadyForConnections(Ready) {
		srv.Shutdown()
		return nil, fmt.Errorf("not ready after %s", Ready)
	}
	return srv, nil
}

// StartServer starts one JetStream node on a loopback port, stopped when
// the test ends.
func StartServer(t testing.TB) *Node {
	t.Helper()
	return StartServerWith(t, nil)
}

// StartServerWith is StartServer with the server's options changed by tune
// (when not nil) before it starts: a small JetStreamMaxStore, say.
func StartServerWith(t testing.TB, tune func(*server.Options)) *Node {
	t.Helper()
	ports := freePorts(t, 1)
	n := &Node{Name: "n1", StoreDir: t.TempDir()}
	n.opts = &server.Options{
		ServerName: n.Name,
		Host:       "127.0.0.1",
		Port:       ports[0],
		JetStream:  true,
		StoreDir:   n.StoreDir,
		NoSigs:     true,
		NoLog:      true,
	}
	if tune != nil {
		tune(n.opts)
	}
	n.URL = "nats://127.0.0.1:" + strconv.Itoa(ports[0])
	n.Restart(t)
	t.Cleanup(n.Stop)
	return n
}

// Cluster is an N-node JetStream cluster on loopback.
type Cluster struct {
	Nodes []*Node
}

// URLs returns every node's client URL (stopped nodes included: clients
// skip them and reconnect when they come back).
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return urls
}

// Stop stops node i (0-based); see Node.Stop.
func (c *Cluster) Stop(i int) { c.Nodes[i].Stop() }

// StartCluster starts an n-node JetStream cluster (full route mesh, client
// and route ports on 127.0.0.1, a store dir per node), waits until it has a
// JetStream meta leader, and stops it when the test ends.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: cluster of %d nodes", n)
	}
	ports := freePorts(t, 2*n)
	routes := make([]*url.URL, n)
	for i := range n {
		routes[i] = &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(ports[n+i])}
	}
	c := &Cluster{}
	for i := range n {
		node := &Node{Name: "n" + strconv.Itoa(i+1), StoreDir: t.TempDir()}
		node.URL = "nats://127.0.0.1:" + strconv.Itoa(ports[i])
		node.opts = &server.Options{
			ServerName: node.Name,
			Host:       "127.0.0.1",
			Port:       ports[i],
			JetStream:  true,
			StoreDir:   node.StoreDir,
			NoSigs:     true,
			NoLog:      true,
			Cluster: server.ClusterOpts{
				Name: "plumbtest",
				Host: "127.0.0.1",
				Port: ports[n+i],
			},
			Routes: routes,
		}
		c.Nodes = append(c.Nodes, node)
	}
	t.Cleanup(func() {
		for _, node := range c.Nodes {
			node.Stop()
		}
	})
	// Start all nodes before waiting on any: a node waits for its routes.
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, node := range c.Nodes {
		wg.Go(func() {
			srv, err := start(node.opts.Clone())
			if err != nil {
				errs[i] = fmt.Errorf("start %s: %w", node.Name, err)
				return
			}
			node.mu.Lock()
			node.srv = srv
			node.mu.Unlock()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("natstest: %v", err)
		}
	}
	if n > 1 {
		c.WaitForLeader(t)
	}
	return c
}

// WaitForLeader waits until the running nodes agree on a JetStream meta
// leader and are current with it.
func (c *Cluster) WaitForLeader(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(Ready)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		leader, current := false, true
		for _, node := range c.Nodes {
			srv := node.Server()
			if srv == nil {
				continue
			}
			if srv.JetStreamIsLeader() {
				leader = true
			}
			if !srv.JetStreamIsCurrent() {
				current = false
			}
		}
		if leader && current {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: no JetStream meta leader after %s", Ready)
		}
	}
}

// freePorts reserves n distinct loopback TCP ports. They are released
// just before the servers bind them; another process grabbing one in that
// window is possible but rare.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	ls := make([]net.Listener, n)
	for i := range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: reserve port: %v", err)
		}
		ls[i] = l
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}
