# The pod sandbox image of the real test node: one static program (deploy/pause/pause.c), built by
# `make images`; as containerd's sandbox_image it never has to be pulled.
FROM scratch
COPY pause /pause
USER 65535:65535
ENTRYPOINT ["/pause"]
