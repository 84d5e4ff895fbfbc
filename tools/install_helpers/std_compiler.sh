#!/usr/bin/env bash
# Run a C++ compiler (g++, clang++, nvcc) with the C++ standard raised to at least STD:
#
#   std_compiler.sh STD REAL_COMPILER [ARGS...]        e.g.  std_compiler.sh c++20 nvcc -std=c++17 -c x.cu
#
# Every older C++ standard in ARGS (-std=c++14, -std=gnu++17, --std=c++17, or "-std c++17" as two arguments) becomes
# STD (gnu++ stays gnu++); newer ones (-std=c++23), C standards (-std=c11) and all other arguments pass unchanged.
# tools/install.sh builds mmcv 2.1.0 through this: its setup.py hard-codes -std=c++17 for g++ and nvcc, but torch
# 2.14's headers stop with "#error C++20 or later compatible compiler is required".
set -uo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 STD REAL_COMPILER [ARGS...]  (STD like c++20)" >&2
    exit 2
fi
target=$1
real=$2
shift 2

# Year of a standard's digits (98, 03, 0x, 11, 1y, 14, 1z, 17, 2a, 20, 2b, 23, 2c, 26); empty if unknown.
std_year() {
    case "$1" in
        98) echo 1998 ;; 03) echo 2003 ;; 0x|11) echo 2011 ;; 1y|14) echo 2014 ;; 1z|17) echo 2017 ;;
        2a|20) echo 2020 ;; 2b|23) echo 2023 ;; 2c|26) echo 2026 ;; *) echo "" ;;
    esac
}

case "$target" in
    c++*|gnu++*) target_digits=${target#*++} ;;
    *) echo "$0: STD must look like c++20 or gnu++20, got '$target'" >&2; exit 2 ;;
esac
target_year=$(std_year "$target_digits")
if [ -z "$target_year" ]; then
    echo "$0: unknown C++ standard '$target'" >&2
    exit 2
fi

# The value of a -std option, raised to the target when it is an older C++ standard.
raise() {
    local value=$1 family digits year
    case "$value" in
        c++*|gnu++*) family=${value%%++*}; digits=${value#*++} ;;
        *) echo "$value"; return ;;
    esac
    year=$(std_year "$digits")
    if [ -n "$year" ] && [ "$year" -lt "$target_year" ]; then
        echo "${family}++${target_digits}"
    else
        echo "$value"
    fi
}

args=()
value_next=0
for a in "$@"; do
    if [ "$value_next" = 1 ]; then
        value_next=0
        args+=("$(raise "$a")")
        continue
    fi
    case "$a" in
        -std=*|--std=*) args+=("${a%%=*}=$(raise "${a#*=}")") ;;
        -std|--std) args+=("$a"); value_next=1 ;;
        *) args+=("$a") ;;
    esac
done
exec "$real" ${args[@]+"${args[@]}"}
