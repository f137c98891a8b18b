#!/bin/sh
# Runs `claude -p` on the rendered prompt. Secrets never enter the
# environment or the command line:
#  - gateway mode (default): ANTHROPIC_BASE_URL points at the job's gateway and
#    ANTHROPIC_API_KEY holds a placeholder; the gateway adds the real key.
#  - file mode (for logins that need a refresh token): the worker mounts the
#    credential read-only at /run/secrets/claude; it is copied to the agent's
#    private tmpfs home, where Claude Code reads it, and never exported.
# Usage: assessq-agent PROMPT_FILE OUTPUT_FILE
set -eu
prompt_file=$1
output_file=$2
if [ -r /run/secrets/claude ]; then
  mkdir -p "$HOME/.claude"
  umask 077
  cp /run/secrets/claude "$HOME/.claude/.credentials.json"
  unset ANTHROPIC_API_KEY
fi
cd /tmp
claude -p "$(cat "$prompt_file")" \
  --output-format json \
  --dangerously-skip-permissions \
  --max-turns 60 > /tmp/claude-run.json
test -s "$output_file"
