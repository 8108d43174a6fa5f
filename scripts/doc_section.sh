# doc_section FILE HEADING: write stdin as the section HEADING of FILE (a
# markdown page of generated results, docs/bench.md): the old section,
# from the line HEADING to the next "## " heading or the end, is dropped,
# everything else of FILE is kept, and the new section goes at the end.
# Source it; each benchmark script writes its own section this way.
doc_section() {
  local file="$1" heading="$2" keep="" body
  body="$(cat)"
  [ -f "$file" ] && keep="$(H="$heading" awk '
    $0 == ENVIRON["H"] { skip = 1; next }
    skip && /^## / { skip = 0 }
    !skip { print }' "$file")"
  {
    [ -z "$keep" ] || printf '%s\n\n' "$keep" # $(…) dropped its trailing newlines
    printf '%s\n\n%s\n' "$heading" "$body"
  } >"$file.tmp"
  mv "$file.tmp" "$file"
}
