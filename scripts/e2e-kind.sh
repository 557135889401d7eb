#!/usr/bin/env bash
# End to end on a real cluster, for machines with Docker, kind, helm and
# kubectl: builds the image, creates a kind cluster with a registry beside
# it, installs the chart, deploys the hello component as a
# WorkloadDeployment behind a Service, and curls it through the Service.
# Not part of the test command (no container runtime on the CI machines).
#
#   scripts/e2e-kind.sh          # create, test, keep the cluster
#   CLEANUP=1 scripts/e2e-kind.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER=${CLUSTER:-wash-e2e}
REGISTRY=${CLUSTER}-registry
NAMESPACE=wasmcloud

fail() { echo "error: $*" >&2; exit 1; }
for tool in docker kind helm kubectl cargo; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (needed: docker, kind, helm, kubectl, cargo)"
done
docker info >/dev/null 2>&1 || fail "docker is installed but its daemon is not reachable (is it running? are you in the docker group?)"

echo "== image"
docker build -t wash:e2e .

echo "== cluster ${CLUSTER} and registry ${REGISTRY}"
kind get clusters | grep -qx "$CLUSTER" || kind create cluster --name "$CLUSTER"
if ! docker inspect "$REGISTRY" >/dev/null 2>&1; then
    docker run -d --restart=always --name "$REGISTRY" -p 127.0.0.1:5001:5000 registry:2 >/dev/null
fi
docker network connect kind "$REGISTRY" 2>/dev/null || true
kind load docker-image wash:e2e --name "$CLUSTER"

echo "== hello component"
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
cargo build --release --target wasm32-wasip2 --manifest-path components/Cargo.toml -p http-hello-world
cargo run -q -p wash -- oci push localhost:5001/hello:1 \
    components/target/wasm32-wasip2/release/http_hello_world.wasm --insecure

echo "== chart"
helm upgrade --install wasm charts/runtime-operator -n "$NAMESPACE" --create-namespace \
    --set image.repository=wash --set image.tag=e2e --set image.pullPolicy=Never \
    --set "runtime.allowInsecureRegistries={${REGISTRY}:5000}" --wait --timeout 5m

echo "== hello WorkloadDeployment and Service"
kubectl apply -f - <<YAML
apiVersion: v1
kind: Service
metadata: {name: hello, namespace: default}
spec:
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: runtime.wasmcloud.dev/v1alpha1
kind: WorkloadDeployment
metadata: {name: hello, namespace: default}
spec:
  replicas: 2
  kubernetes:
    service: {name: hello}
  template:
    spec:
      components:
        - name: hello
          image: ${REGISTRY}:5000/hello:1
      hostInterfaces:
        - namespace: wasi
          package: http
          interfaces: [incoming-handler]
          config: {host: hello.example.com}
YAML
kubectl wait workloaddeployment/hello --for=condition=Ready --timeout=3m

echo "== curl through the Service"
answer=$(kubectl run curl-hello --rm -i --restart=Never --image=curlimages/curl -- \
    curl -sS --retry 10 --retry-all-errors -H 'Host: hello.default' http://hello.default/)
echo "$answer"
case "$answer" in
    *"Hello from wash!"*) echo "PASS" ;;
    *) fail "unexpected answer through the Service" ;;
esac

if [ "${CLEANUP:-}" = 1 ]; then
    kind delete cluster --name "$CLUSTER"
    docker rm -f "$REGISTRY" >/dev/null
fi
