# Cluster DNS of the real test node: the static CoreDNS that hack/k8s-binaries.sh builds from the Go
# module proxy, alone in the image. `make images` builds it.
FROM scratch
COPY coredns /coredns
USER 65534:65534
ENTRYPOINT ["/coredns"]
