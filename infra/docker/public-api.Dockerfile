# MicroBima public API: Kong 3.9 in DB-less mode. Generic and environment-neutral: the image holds
# a template and its renderer; the container renders /kong/kong.yml from KONG_UPSTREAM_URL (fly.toml
# [env]) and the partner keys (secrets) each time it starts, so a promoted image routes to the
# environment it runs in. Build args as for the other apps, e.g.
#   --build-arg WORKSPACE=examples/microbima --build-arg APP_DIR=apps/public-api --build-arg APP_PACKAGE=@microbima/public-api
# One stage: Kong needs two files, copied straight from the build context; nothing to install.

FROM kong:3.9.3@sha256:12972ce1ab6396083e56e7d46fce084836c98cc819344bef44a1f583ec3ab191
ARG WORKSPACE=.
ARG APP_DIR
ARG APP_PACKAGE
USER root
RUN test -n "$APP_DIR" || { echo "build arg APP_DIR is required" >&2; exit 1; }
# Kong's user writes the rendered configuration at start; root keeps the template and renderer.
RUN mkdir -p /kong && chown kong /kong
COPY ${WORKSPACE}/${APP_DIR}/docker-entrypoint.sh /kong/docker-entrypoint.sh
COPY ${WORKSPACE}/${APP_DIR}/kong.yml.template /kong/kong.yml.template
# Fail the build, not the deploy, if the renderer does not run under this image's /bin/sh.
RUN KONG_UPSTREAM_URL=http://upstream.invalid KONG_PARTNER_API_KEY=build-check sh /kong/docker-entrypoint.sh render >/dev/null
USER kong
ENV KONG_DATABASE=off \
    KONG_DECLARATIVE_CONFIG=/kong/kong.yml \
    KONG_PROXY_LISTEN="0.0.0.0:8000" \
    KONG_ADMIN_LISTEN=off \
    KONG_PROXY_ACCESS_LOG=/dev/stdout \
    KONG_PROXY_ERROR_LOG=/dev/stderr \
    KONG_DNS_ORDER="LAST,AAAA,A,CNAME"
EXPOSE 8000
# Through sh: the exec bit of a copied file depends on the checkout. A child image's ENTRYPOINT
# clears the inherited CMD, hence Kong's own CMD again.
ENTRYPOINT ["sh", "/kong/docker-entrypoint.sh"]
CMD ["kong", "docker-start"]
