package cluster_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDeployManifestsParse: the cluster deployment files of deploy/ are
// valid YAML with the shape their tools expect (syntax only: nothing is
// deployed). Compose: services with an image or a build, the plumb ones
// pointed at all three NATS nodes. Kubernetes: every document has
// apiVersion, kind and metadata.name.
func TestDeployManifestsParse(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..", "deploy")

	var compose struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Build   any      `yaml:"build"`
			Command []string `yaml:"command"`
		} `yaml:"services"`
		Volumes map[string]any `yaml:"volumes"`
	}
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.cluster.yml"))
	must(t, err)
	must(t, yaml.Unmarshal(b, &compose))
	nats, plumb := 0, 0
	for name, svc := range compose.Services {
		if svc.Image == "" && svc.Build == nil {
			t.Errorf("compose service %s has neither image nor build", name)
		}
		cmd := strings.Join(svc.Command, " ")
		switch {
		case strings.HasPrefix(name, "nats"):
			nats++
			if !strings.Contains(cmd, "--js") || !strings.Contains(cmd, "--routes") {
				t.Errorf("compose %s: not a JetStream cluster node: %s", name, cmd)
			}
		case strings.HasPrefix(name, "plumb"):
			plumb++
			if !strings.Contains(cmd, "nats://nats1:4222,nats://nats2:4222,nats://nats3:4222") {
				t.Errorf("compose %s: --nats does not list the three nodes: %s", name, cmd)
			}
		}
	}
	if nats != 3 || plumb != 3 {
		t.Errorf("compose: %d nats and %d plumb services, want 3 and 3", nats, plumb)
	}

	files, err := filepath.Glob(filepath.Join(root, "k8s", "*.yaml"))
	must(t, err)
	if len(files) < 2 {
		t.Fatalf("deploy/k8s: %d manifests", len(files))
	}
	kinds := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for i := 0; ; i++ {
			var doc struct {
				APIVersion string `yaml:"apiVersion"`
				Kind       string `yaml:"kind"`
				Metadata   struct {
					Name string `yaml:"name"`
				} `yaml:"metadata"`
			}
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s document %d: %v", f, i+1, err)
			}
			if doc.APIVersion == "" || doc.Kind == "" || doc.Metadata.Name == "" {
				t.Errorf("%s document %d: apiVersion %q kind %q name %q", f, i+1, doc.APIVersion, doc.Kind, doc.Metadata.Name)
			}
			kinds[doc.Kind]++
		}
	}
	for _, k := range []string{"StatefulSet", "Deployment", "Service", "ConfigMap"} {
		if kinds[k] == 0 {
			t.Errorf("deploy/k8s has no %s", k)
		}
	}
}
