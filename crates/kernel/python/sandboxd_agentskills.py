"""The agent_skills toolbox of sandboxd (docs/spec/ipython.md section 7).

Imported into the IPython kernel with `from sandboxd_agentskills import *` when the server
runs with both the `agent_skills` and `jupyter` plugins. The functions print their results
with the same texts as the OpenHands reference; `file_editor` is not an editor of its own:
it forwards to the server's native editor over HTTP, so both share one implementation and
one undo history. Optional parsers import their third-party packages lazily and name the
package to install when it is missing.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.error
import urllib.request

CURRENT_FILE = None
CURRENT_LINE = 1
WINDOW = 100


class LineNumberError(Exception):
    pass


# ---------------------------------------------------------------------------------------
# file navigation


def _output_error(error_msg):
    print(f"ERROR: {error_msg}")
    return False


def _clamp(value, min_value, max_value):
    return max(min_value, min(value, max_value))


def _count_lines(path):
    with open(path, errors="replace") as f:
        return max(1, sum(1 for _ in f))


def _current_file(file_path=None):
    path = file_path or CURRENT_FILE
    if not path or not os.path.isfile(path):
        return None
    return path


def _print_window(file_path, targeted_line, window, return_str=False, ignore_window=False):
    global CURRENT_LINE
    path = _current_file(file_path)
    if path is None:
        return "No file open. Use the open_file function first."
    with open(path, errors="replace") as f:
        content = f.read()
    if not content.endswith("\n"):
        content += "\n"
    lines = content.splitlines(True)
    total = len(lines)
    CURRENT_LINE = _clamp(targeted_line, 1, total)
    half = max(1, window // 2)
    if ignore_window:
        start = max(1, CURRENT_LINE)
        end = min(total, CURRENT_LINE + window)
    else:
        start = max(1, CURRENT_LINE - half)
        end = min(total, CURRENT_LINE + half)
    if start == 1:
        end = min(total, start + window - 1)
    if end == total:
        start = max(1, end - window + 1)
    parts = []
    parts.append(f"({start - 1} more lines above)\n" if start > 1 else "(this is the beginning of the file)\n")
    for i in range(start, end + 1):
        line = f"{i}|{lines[i - 1]}"
        parts.append(line if line.endswith("\n") else line + "\n")
    parts.append(f"({total - end} more lines below)\n" if end < total else "(this is the end of the file)\n")
    output = "".join(parts).rstrip()
    if return_str:
        return output
    print(output)
    return ""


def _cur_file_header(current_file, total_lines):
    if not current_file:
        return ""
    return f"[File: {os.path.abspath(current_file)} ({total_lines} lines total)]\n"


def open_file(path: str, line_number: int | None = 1, context_lines: int | None = WINDOW) -> None:
    """Opens a file in the editor and optionally positions at a specific line.

    The function displays a limited window of content, centered around the specified line
    number if provided. To view the complete file content, the agent should use scroll_down and scroll_up
    commands iteratively.

    Args:
        path: The path to the file to open. Absolute path is recommended.
        line_number: The target line number to center the view on (if possible).
            Defaults to 1.
        context_lines: Maximum number of lines to display in the view window.
            Limited to 100 lines. Defaults to 100.
    """
    global CURRENT_FILE, CURRENT_LINE
    if not os.path.isfile(path):
        _output_error(f"File {path} not found.")
        return
    CURRENT_FILE = os.path.abspath(path)
    total = _count_lines(CURRENT_FILE)
    if not isinstance(line_number, int) or line_number < 1 or line_number > total:
        _output_error(f"Line number must be between 1 and {total}")
        return
    CURRENT_LINE = line_number
    if context_lines is None or context_lines < 1:
        context_lines = WINDOW
    output = _cur_file_header(CURRENT_FILE, total)
    output += _print_window(
        CURRENT_FILE, CURRENT_LINE, _clamp(context_lines, 1, 100), return_str=True, ignore_window=False
    )
    if output.strip().endswith("more lines below)"):
        output += "\n[Use `scroll_down` to view the next 100 lines of the file!]"
    print(output)


def goto_line(line_number: int) -> None:
    """Moves the window to show the specified line number.

    Args:
        line_number: int: The line number to move to.
    """
    global CURRENT_LINE
    if _current_file() is None:
        _output_error("No file open. Use the open_file function first.")
        return
    total = _count_lines(CURRENT_FILE)
    if not isinstance(line_number, int) or line_number < 1 or line_number > total:
        _output_error(f"Line number must be between 1 and {total}.")
        return
    CURRENT_LINE = _clamp(line_number, 1, total)
    output = _cur_file_header(CURRENT_FILE, total)
    output += _print_window(CURRENT_FILE, CURRENT_LINE, WINDOW, return_str=True, ignore_window=False)
    print(output)


def _scroll(delta):
    global CURRENT_LINE
    if _current_file() is None:
        _output_error("No file open. Use the open_file function first.")
        return
    total = _count_lines(CURRENT_FILE)
    CURRENT_LINE = _clamp(CURRENT_LINE + delta, 1, total)
    output = _cur_file_header(CURRENT_FILE, total)
    output += _print_window(CURRENT_FILE, CURRENT_LINE, WINDOW, return_str=True, ignore_window=True)
    print(output)


def scroll_down() -> None:
    """Moves the window down by 100 lines.

    Args:
        None
    """
    _scroll(WINDOW)


def scroll_up() -> None:
    """Moves the window up by 100 lines.

    Args:
        None
    """
    _scroll(-WINDOW)


def search_dir(search_term: str, dir_path: str = "./") -> None:
    """Searches for search_term in all files in dir. If dir is not provided, searches in the current directory.

    Args:
        search_term: str: The term to search for.
        dir_path: str: The path to the directory to search.
    """
    if not os.path.isdir(dir_path):
        _output_error(f"Directory {dir_path} not found")
        return
    matches = []
    for root, _, files in os.walk(dir_path):
        for name in files:
            if name.startswith("."):
                continue
            path = os.path.join(root, name)
            try:
                with open(path, "r", errors="ignore") as f:
                    for num, line in enumerate(f, 1):
                        if search_term in line:
                            matches.append((path, num, line.strip()))
            except OSError:
                continue
    if not matches:
        print(f'No matches found for "{search_term}" in {dir_path}')
        return
    num_files = len({m[0] for m in matches})
    if num_files > 100:
        print(f'More than {num_files} files matched for "{search_term}" in {dir_path}. Please narrow your search.')
        return
    print(f'[Found {len(matches)} matches for "{search_term}" in {dir_path}]')
    for path, num, line in matches:
        print(f"{path} (Line {num}): {line}")
    print(f'[End of matches for "{search_term}" in {dir_path}]')


def search_file(search_term: str, file_path: str | None = None) -> None:
    """Searches for search_term in file. If file is not provided, searches in the current open file.

    Args:
        search_term: The term to search for.
        file_path: The path to the file to search.
    """
    if file_path is None:
        file_path = CURRENT_FILE
    if file_path is None:
        _output_error("No file specified or open. Use the open_file function first.")
        return
    if not os.path.isfile(file_path):
        _output_error(f"File {file_path} not found.")
        return
    matches = []
    with open(file_path, errors="replace") as f:
        for num, line in enumerate(f, 1):
            if search_term in line:
                matches.append((num, line.strip()))
    if matches:
        print(f'[Found {len(matches)} matches for "{search_term}" in {file_path}]')
        for num, line in matches:
            print(f"Line {num}: {line}")
        print(f'[End of matches for "{search_term}" in {file_path}]')
    else:
        print(f'[No matches found for "{search_term}" in {file_path}]')


def find_file(file_name: str, dir_path: str = "./") -> None:
    """Finds all files with the given name in the specified directory.

    Args:
        file_name: str: The name of the file to find.
        dir_path: str: The path to the directory to search.
    """
    if not os.path.isdir(dir_path):
        _output_error(f"Directory {dir_path} not found")
        return
    matches = []
    for root, _, files in os.walk(dir_path):
        for name in files:
            if file_name in name:
                matches.append(os.path.join(root, name))
    if matches:
        print(f'[Found {len(matches)} matches for "{file_name}" in {dir_path}]')
        for m in matches:
            print(m)
        print(f'[End of matches for "{file_name}" in {dir_path}]')
    else:
        print(f'[No matches found for "{file_name}" in {dir_path}]')


# ---------------------------------------------------------------------------------------
# document readers (third-party packages are optional and imported on use)


class _Missing(Exception):
    pass


def _need(module, package, function):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise _Missing(
            f"ERROR: {function} needs the Python package `{package}`, which is not installed "
            f"in this kernel. Install it with `%pip install {package}` and call {function} again."
        ) from None


def parse_pdf(file_path: str) -> None:
    """Parses the content of a PDF file and prints it.

    Args:
        file_path: str: The path to the file to open.
    """
    try:
        PyPDF2 = _need("PyPDF2", "PyPDF2", "parse_pdf")
    except _Missing as e:
        print(e)
        return
    print(f"[Reading PDF file from {file_path}]")
    content = PyPDF2.PdfReader(file_path)
    text = ""
    for i, page in enumerate(content.pages):
        text += f"@@ Page {i + 1} @@\n" + page.extract_text() + "\n\n"
    print(text.strip())


def parse_docx(file_path: str) -> None:
    """Parses the content of a DOCX file and prints it.

    Args:
        file_path: str: The path to the file to open.
    """
    try:
        docx = _need("docx", "python-docx", "parse_docx")
    except _Missing as e:
        print(e)
        return
    print(f"[Reading DOCX file from {file_path}]")
    content = docx.Document(file_path)
    text = ""
    for i, para in enumerate(content.paragraphs):
        text += f"@@ Page {i + 1} @@\n" + para.text + "\n\n"
    print(text)


def parse_latex(file_path: str) -> None:
    """Parses the content of a LaTex file and prints it.

    Args:
        file_path: str: The path to the file to open.
    """
    try:
        latex2text = _need("pylatexenc.latex2text", "pylatexenc", "parse_latex")
    except _Missing as e:
        print(e)
        return
    print(f"[Reading LaTex file from {file_path}]")
    with open(file_path) as f:
        data = f.read()
    print(latex2text.LatexNodes2Text().latex_to_text(data).strip())


def parse_pptx(file_path: str) -> None:
    """Parses the content of a pptx file and prints it.

    Args:
        file_path: str: The path to the file to open.
    """
    try:
        pptx = _need("pptx", "python-pptx", "parse_pptx")
    except _Missing as e:
        print(e)
        return
    print(f"[Reading PowerPoint file from {file_path}]")
    try:
        pres = pptx.Presentation(str(file_path))
        text = []
        for i, slide in enumerate(pres.slides):
            text.append(f"@@ Slide {i + 1} @@")
            for shape in slide.shapes:
                if hasattr(shape, "text"):
                    text.append(shape.text)
        print("\n".join(text))
    except Exception as e:
        print(f"Error reading PowerPoint file: {e}")


# ---------------------------------------------------------------------------------------
# OpenAI-backed readers (exported only when a key is set at import time)


def _openai_key():
    return os.getenv("OPENAI_API_KEY", os.getenv("SANDBOX_ENV_OPENAI_API_KEY", ""))


def _openai_client():
    openai = _need("openai", "openai", "this function")
    return openai.OpenAI(
        api_key=_openai_key(), base_url=os.getenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    )


def _openai_model():
    return os.getenv("OPENAI_MODEL", "gpt-4o")


def _max_token():
    return os.getenv("MAX_TOKEN", 500)


def _image_messages(task, b64):
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": task},
                {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{b64}"}},
            ],
        }
    ]


def parse_audio(file_path: str, model: str = "whisper-1") -> None:
    """Parses the content of an audio file and prints it.

    Args:
        file_path: str: The path to the audio file to transcribe.
        model: str: The audio model to use for transcription. Defaults to 'whisper-1'.
    """
    print(f"[Transcribing audio file from {file_path}]")
    try:
        with open(file_path, "rb") as audio:
            transcript = _openai_client().audio.transcriptions.create(model=model, file=audio)
        print(transcript.text)
        print(f"Total usage tokens: {transcript.usage.total_tokens}")
    except _Missing as e:
        print(e)
    except Exception as e:
        print(f"Error transcribing audio file: {e}")


def parse_image(file_path: str, task: str = "Describe this image as detail as possible.") -> None:
    """Parses the content of an image file and prints the description.

    Args:
        file_path: str: The path to the file to open.
        task: str: The task description for the API call. Defaults to 'Describe this image as detail as possible.'.
    """
    print(f"[Reading image file from {file_path}]")
    try:
        with open(file_path, "rb") as f:
            b64 = base64.b64encode(f.read()).decode("utf-8")
        response = _openai_client().chat.completions.create(
            model=_openai_model(), messages=_image_messages(task, b64), max_tokens=_max_token()
        )
        print(response.choices[0].message.content)
    except _Missing as e:
        print(e)
    except Exception as error:
        print(f"Error with the request: {error}")


def parse_video(
    file_path: str, task: str = "Describe this image as detail as possible.", frame_interval: int = 30
) -> None:
    """Parses the content of an image file and prints the description.

    Args:
        file_path: str: The path to the video file to open.
        task: str: The task description for the API call. Defaults to 'Describe this image as detail as possible.'.
        frame_interval: int: The interval between frames to analyze. Defaults to 30.
    """
    print(f"[Processing video file from {file_path} with frame interval {frame_interval}]")
    try:
        cv2 = _need("cv2", "opencv-python", "parse_video")
    except _Missing as e:
        print(e)
        return
    task = task or "This is one frame from a video, please summarize this frame."
    frames = []
    video = cv2.VideoCapture(file_path)
    count = 0
    while video.isOpened():
        ok, frame = video.read()
        if not ok:
            break
        if count % 10 == 0:
            _, buf = cv2.imencode(".jpg", frame)
            frames.append(base64.b64encode(buf).decode("utf-8"))
        count += 1
    video.release()
    selected = frames[::frame_interval]
    if len(selected) > 30:
        selected = frames[:: max(1, len(frames) // 30)]
    print(f"Totally {len(selected)} would be analyze...\n")
    for idx, frame in enumerate(selected, 1):
        print(f"Process the {file_path}, current No. {idx * frame_interval} frame...")
        try:
            response = _openai_client().chat.completions.create(
                model=_openai_model(), messages=_image_messages(task, frame), max_tokens=_max_token()
            )
            print(f"Frame {idx}'s content: {response.choices[0].message.content}\n")
        except _Missing as e:
            print(e)
            return
        except Exception as error:
            print(f"Error with the request: {error}")


# ---------------------------------------------------------------------------------------
# file_editor: the server's own editor, reached over HTTP


def file_editor(
    command,
    path,
    file_text=None,
    view_range=None,
    old_str=None,
    new_str=None,
    insert_line=None,
    enable_linting=False,
) -> str:
    """Runs the OH_ACI editor (view, create, str_replace, insert, undo_edit) on `path`
    and returns its `<oh_aci_output_...>` result; usually called as print(file_editor(...))."""
    import builtins

    url = os.environ.get("SANDBOXD_SERVER_URL", "").rstrip("/")
    if not url:
        raise RuntimeError("file_editor is unavailable: SANDBOXD_SERVER_URL is not set in this kernel")
    args = {
        "command": command,
        "path": path,
        "file_text": file_text,
        "view_range": view_range,
        "old_str": old_str,
        "new_str": new_str,
        "insert_line": insert_line,
        "enable_linting": enable_linting,
    }
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None
    body = json.dumps({"args": args, "cwd": cwd}, default=str).encode("utf-8")
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("SANDBOXD_CALLBACK_TOKEN")
    if token:
        headers["X-Sandboxd-Callback-Token"] = token
    request = urllib.request.Request(url + "/internal/file_editor", data=body, headers=headers, method="POST")
    # The server is on loopback: never through a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=600) as r:
            reply = json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        detail = e.read().decode("utf-8", "replace")
        raise RuntimeError(f"file_editor call failed (HTTP {e.code}): {detail}") from None
    except OSError as e:
        raise RuntimeError(f"file_editor could not reach the sandboxd server: {e}") from None
    if reply.get("ok"):
        return reply.get("text", "")
    exc = getattr(builtins, str(reply.get("exception")), None)
    if not (isinstance(exc, type) and issubclass(exc, BaseException)):
        exc = RuntimeError
    raise exc(reply.get("message", ""))


__all__ = [
    "open_file",
    "goto_line",
    "scroll_down",
    "scroll_up",
    "search_dir",
    "search_file",
    "find_file",
    "parse_pdf",
    "parse_docx",
    "parse_latex",
    "parse_pptx",
]
if _openai_key():
    __all__ += ["parse_audio", "parse_video", "parse_image"]
__all__ += ["file_editor"]
