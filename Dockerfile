# ecu2mqtt: build stage with the same Debian packages the CI uses, slim runtime stage.
#   docker build -t ecu2mqtt --build-arg ECU2MQTT_VERSION="$(scripts/version.sh)" .
# Published for amd64 and arm64 by .github/workflows/release.yml as ghcr.io/ecu2mqtt/ecu2mqtt.
#   docker run -p 8995-8997:8995-8997 -e ECU2MQTT_MQTT_URL=mqtt://BROKER:1883 -v ecu2mqtt:/data ecu2mqtt
ARG BUILD_FROM=debian:bookworm-slim

FROM debian:bookworm-slim AS build
ARG ECU2MQTT_VERSION
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh build && rm -rf /var/lib/apt/lists/*
COPY CMakeLists.txt /src/
COPY cmake /src/cmake
COPY include /src/include
COPY src /src/src
# Images are labelled with ECU2MQTT_VERSION: refuse to build one whose source says otherwise.
# (Without the argument, a local build, there is nothing to compare.)
RUN cmake -S /src -B /build -DCMAKE_BUILD_TYPE=Release -DECU2MQTT_BUILD_TESTS=OFF \
    && cmake --build /build --parallel "$(nproc)" --target ecu2mqtt \
    && strip /build/ecu2mqtt \
    && { [ -z "${ECU2MQTT_VERSION}" ] || test "$(/build/ecu2mqtt --version)" = "ecu2mqtt ${ECU2MQTT_VERSION}"; }

FROM ${BUILD_FROM}
ARG ECU2MQTT_VERSION
LABEL org.opencontainers.image.title="ecu2mqtt" \
      org.opencontainers.image.version="${ECU2MQTT_VERSION}" \
      org.opencontainers.image.source="https://github.com/ecu2mqtt/ecu2mqtt"
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN /tmp/install-deps.sh container && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin ecu2mqtt \
    && mkdir -p /data && chown ecu2mqtt /data
COPY --from=build /build/ecu2mqtt /usr/bin/ecu2mqtt
USER 10001
ENV ECU2MQTT_STATE_DIR=/data
# The status page: loopback inside a container would be unreachable.
ENV ECU2MQTT_HTTP_LISTEN=0.0.0.0:8099
VOLUME /data
EXPOSE 8995/tcp 8996/tcp 8997/tcp 8099/tcp
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s CMD ["/usr/bin/ecu2mqtt", "--healthcheck"]
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/ecu2mqtt"]
