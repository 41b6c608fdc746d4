# Multi-stage build: a static binary on a distroless nonroot base.
#   docker build -t derivatives_exporter .
#   docker run -p 9788:9788 derivatives_exporter
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.1.0
ARG REVISION=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w \
        -X github.com/prometheus/common/version.Version=${VERSION} \
        -X github.com/prometheus/common/version.Revision=${REVISION} \
        -X github.com/prometheus/common/version.Branch=main \
        -X github.com/prometheus/common/version.BuildUser=docker" \
      -o /out/derivatives_exporter .

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="derivatives_exporter" \
      org.opencontainers.image.description="Prometheus exporter for crypto-derivatives liquidations, open interest, funding and sentiment" \
      org.opencontainers.image.source="https://github.com/derivatives-exporter/derivatives_exporter"
COPY --from=build /out/derivatives_exporter /bin/derivatives_exporter
EXPOSE 9788
USER nonroot:nonroot
ENTRYPOINT ["/bin/derivatives_exporter"]
