# The crowsnest image: a static binary built outside the image, as release
# tools do (hack/image.sh, `make image`, the release), the CA bundle, and
# nothing else: every stage is FROM scratch, so it builds without a
# registry. Build context: a directory holding crowsnest (CGO_ENABLED=0) and
# ca-certificates.crt.
#   podman build -t crowsnest:dev -f Dockerfile CONTEXT
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="crowsnest" \
      org.opencontainers.image.description="Prometheus metrics, traces and pages for Argo CD deployments" \
      org.opencontainers.image.source="https://github.com/crowsnest/crowsnest" \
      org.opencontainers.image.url="https://github.com/crowsnest/crowsnest" \
      org.opencontainers.image.documentation="https://github.com/crowsnest/crowsnest#readme" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY crowsnest /usr/bin/crowsnest
# The nonroot user of distroless images; no shell, no package manager.
USER 65532:65532
EXPOSE 9829
ENTRYPOINT ["/usr/bin/crowsnest"]
