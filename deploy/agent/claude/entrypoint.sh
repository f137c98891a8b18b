#!/bin/sh
# The agent image's entrypoint (deploy/agent/claude/Dockerfile and the test
# image of scripts/build-claude-image.sh both install this file): runs
# `claude -p` on the rendered prompt and prints Claude Code's stream-json
# events on stdout (the worker reads the final `result` event to end the job
# once the agent is done; the events are the attempt's record of what the
# agent did). Secrets never enter the environment or the command line:
#  - gateway mode (default): ANTHROPIC_BASE_URL points at the job's gateway and
#    ANTHROPIC_API_KEY holds a placeholder; the gateway adds the real key.
#  - file mode (for logins that need a refresh token): the worker mounts the
#    credential read-only at /run/secrets/claude; it is copied to the agent's
#    private tmpfs home, where Claude Code reads it, and never exported.
# Claude Code's own settings are in /etc/claude-code/managed-settings.json
# (WebFetch's preflight to api.anthropic.com skipped; telemetry, error
# reporting and auto-update off, set here too so they hold from the start).
# Usage: assessq-agent PROMPT_FILE OUTPUT_FILE
set -eu
prompt_file=$1
output_file=$2
export DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 DISABLE_AUTOUPDATER=1 \
  DISABLE_BUG_COMMAND=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 HF_HUB_DISABLE_TELEMETRY=1
# Claude Code (a Bun executable) trusts its bundled roots; this adds the
# image's system store, so a CA added there (a TLS-inspecting network's, a
# test's) is trusted by Claude Code as by Python.
export NODE_EXTRA_CA_CERTS="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
if [ -r /run/secrets/claude ]; then
  mkdir -p "$HOME/.claude"
  umask 077
  cp /run/secrets/claude "$HOME/.claude/.credentials.json"
  unset ANTHROPIC_API_KEY
fi
cd /tmp
claude -p "$(cat "$prompt_file")" \
  --output-format stream-json --verbose \
  --dangerously-skip-permissions \
  --max-turns 60
test -s "$output_file"
