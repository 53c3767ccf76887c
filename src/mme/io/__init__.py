"""Reading data off disk: video list files, official split files, and video decoding."""

from mme.io.lists import VideoEntry, read_list, write_list
from mme.io.video import VideoReader, open_video, write_video

__all__ = ["VideoEntry", "VideoReader", "open_video", "read_list", "write_list", "write_video"]
