//! The bash side of the session: the start-up script (prompt function, JSON escaping) and the
//! line typed to run a command.
//!
//! Owns the shell code only; it never talks to the terminal. Everything that runs per prompt
//! is bash builtins (no forks): values are JSON-escaped with parameter expansion, `\u`/`\h`
//! come from `${var@P}` prompt expansion, and `which python` is a PATH walk with `[[ -x ]]`.

use std::path::Path;

/// Name prefix of everything this crate defines in the shell.
const NS: &str = "__sbx";

/// The start-up file given to `bash --rcfile`. It reads `~/.bashrc` first, as the reference's
/// interactive non-login `su <user> -` shell does, then installs the prompt.
pub fn rcfile(nonce: &str, cmd_file: &Path) -> String {
    let trigger = trigger_definitions(cmd_file);
    let mut ctrl_escapes = String::new();
    for c in 1u8..0x20 {
        if matches!(c, b'\n' | b'\r' | b'\t') {
            continue;
        }
        ctrl_escapes.push_str(&format!("    s=${{s//$'\\x{c:02x}'/\\\\u{c:04x}}}\n"));
    }
    let tag = crate::prompt::osc_tag(nonce)
        .replace('\x1b', "\\e")
        .replace('\x07', "\\a");
    format!(
        r#"# sandboxd: start-up of the agent's shell (deleted once the shell is up).
if [ -f ~/.bashrc ]; then . ~/.bashrc; fi
unset PROMPT_COMMAND PS0
{NS}_e=0
{NS}_n=0
{NS}_cc=$'\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f'
# JSON-escape $1 into {NS}_v (builtins only: this runs at every prompt).
{NS}_j() {{
  local s=$1
  if [[ $s == *[\\\"]* ]]; then
    s=${{s//\\/\\\\}}
    s=${{s//\"/\\\"}}
  fi
  if [[ $s == *["${NS}_cc"]* ]]; then
    s=${{s//$'\n'/\\n}}
    s=${{s//$'\r'/\\r}}
    s=${{s//$'\t'/\\t}}
{ctrl_escapes}  fi
  {NS}_v=$s
}}
# Builds the PS1 metadata block of docs/spec/bash.md section 3, behind an invisible tag. Escaped
# values are cached by their raw value (escaping costs ~25 us per value), which python by
# PATH while its result stays executable. Written to be safe under the agent's set -eu.
{NS}_p() {{
  local e=$? p=${{!-}} h='\h' rest d
  {NS}_e=$e
  if [[ -z ${{{NS}_py-}} || ! -x ${{{NS}_py-}} || ${{PATH-}} != "${{{NS}_lp-}}" ]]; then
    {NS}_lp=${{PATH-}}
    {NS}_py=
    rest=${{PATH-}}:
    while [[ -n $rest ]]; do
      d=${{rest%%:*}}
      rest=${{rest#*:}}
      if [[ -x ${{d:-.}}/python && ! -d ${{d:-.}}/python ]]; then
        {NS}_py=${{d:-.}}/python
        break
      fi
    done
    {NS}_j "${NS}_py"
    {NS}_epy=${NS}_v
  fi
  if [[ ${{PWD-}} != "${{{NS}_lw-}}" ]]; then
    {NS}_lw=${{PWD-}}
    {NS}_j "${NS}_lw"
    {NS}_ew=${NS}_v
  fi
  h=${{h@P}}
  if [[ $h != "${{{NS}_lh-}}" ]]; then
    {NS}_lh=$h
    {NS}_j "$h"
    {NS}_eh=${NS}_v
  fi
  {NS}_ps1=$'{tag}\n###PS1JSON###\n{{\n  "pid": "'"$p"$'",\n  "exit_code": "'"$e"$'",\n  "username": "'"${NS}_eu"$'",\n  "hostname": "'"${NS}_eh"$'",\n  "working_dir": "'"${NS}_ew"$'",\n  "py_interpreter_path": "'"${NS}_epy"$'",\n  "sandboxd_seq": "'"${{{NS}_n:-0}}"$'"\n}}\n###PS1END###\n'
  PS1='${{{NS}_ps1}}'
}}
{NS}_u='\u'
{NS}_j "${{{NS}_u@P}}"
{NS}_eu=${NS}_v
# Gives the next command the exit status of the previous one.
{NS}_r() {{ return "${{{NS}_e:-0}}"; }}
# In a group whose stderr is /dev/null, so set -x does not trace the prompt's plumbing.
{trigger}PROMPT_COMMAND='{{ {NS}_p; }} 2>/dev/null'
PS1='${{{NS}_ps1}}'
PS2=
bind 'set enable-bracketed-paste off' 2>/dev/null
# Readline re-measures the ~250-byte prompt character by character at every prompt; in a
# UTF-8 locale each step decodes from the start of the string again (~0.1 ms per prompt).
# Byte-oriented it only counts bytes: the same prompt bytes, and the commands arrive
# through the command file, never typed into readline.
bind 'set byte-oriented on' 2>/dev/null
case ":${{HISTCONTROL-}}:" in
  *:ignorespace:*|*:ignoreboth:*) ;;
  *) HISTCONTROL=${{HISTCONTROL:+$HISTCONTROL:}}ignorespace ;;
esac
"#
    )
}

/// Shell code that runs the command stored in `cmd_file`: read with one builtin and `eval`ed,
/// so it behaves as if typed (same error texts, job control, `[1] <pid>` lines, aliases,
/// `declare` scope) without the terminal's echo, line-length limits, tab completion or history
/// expansion touching it; `$?` is the previous command's.
fn run_code(cmd_file: &Path) -> String {
    let path = cmd_file.display().to_string().replace('\'', r"'\''");
    // The groups send the xtrace lines of this plumbing to /dev/null (`set -x` shows the
    // agent's command, not ours); `&& ...` keeps `set -e` from ending the shell when the
    // previous status is non-zero. The count in `{NS}_n` lets the driver tell a fresh prompt
    // from one bash printed again unchanged (see `session`).
    format!(
        "{{ builtin mapfile -d '' {NS}_a <'{path}'; (( {NS}_n = ${{{NS}_n:-0}} + 1 )); }} 2>/dev/null; {{ {NS}_r; }} 2>/dev/null && {{ :; }} 2>/dev/null; builtin eval \"${{{NS}_a[0]-}}\""
    )
}

/// Definitions that make [`TRIGGER`] run the stored command: an alias, so the `eval` happens
/// at top level, and a function of the same name as a fallback should the agent turn alias
/// expansion off.
pub fn trigger_definitions(cmd_file: &Path) -> String {
    let code = run_code(cmd_file);
    let quoted = code.replace('\'', r"'\''");
    // The function first: once the alias exists, `__sbx() {` would be alias-expanded.
    format!("function {NS} {{ {code}; }}\nalias {NS}='{quoted}'\n")
}

/// The line typed at the prompt to run a command: short, because readline reads and echoes
/// typed input one byte at a time. The leading space keeps it out of the history.
pub const TRIGGER: &str = " __sbx";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_quotes_the_path() {
        let t = run_code(Path::new("/tmp/a'b/cmd"));
        assert!(t.contains(r"<'/tmp/a'\''b/cmd'"), "{t}");
        assert_eq!(TRIGGER.trim(), NS);
    }

    #[test]
    fn rcfile_has_no_forks_in_the_prompt() {
        let rc = rcfile("n0nce", Path::new("/tmp/cmd"));
        assert!(!rc.contains("$("), "command substitution forks");
        assert!(!rc.contains('`'));
        assert!(rc.contains("\\e]633;sandboxd;n0nce\\a"));
        assert!(
            rc.contains("bind 'set byte-oriented on'"),
            "the cheap prompt"
        );
    }

    #[test]
    fn rcfile_parses() {
        let rc = rcfile("NONCE", Path::new("/tmp/x'y/cmd"));
        let out = std::process::Command::new("bash")
            .args(["-n", "-c", &rc])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
