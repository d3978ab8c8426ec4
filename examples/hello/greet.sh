#!/bin/sh
echo "$GREETING, $1! ($(cat /app/build-info.txt), running as $(id -un))"
