"""Batch video and images on a Ray cluster: `stylecam SOURCES... -o OUT --cluster [ADDRESS]`.

The same work as a single-machine file run, spread over the workers of a cluster (docs/cluster.md):

  options.py   the command line's --cluster flags and `stylecam info --cluster`
  connect.py   reaching a cluster (a local one, or `ray start`'s), and what it holds
  driver.py    the run: outputs, tasks, retries, the progress bar, the summary
  worker.py    a worker: one Stylizer per process, a task at a time
  segments.py  long videos cut at key frames and joined again (ffmpeg stream copy)
  manifest.py  what is done, keyed by input content and settings, so a rerun skips it
  progress.py  frames counted on the workers for the one progress bar

Ray is an optional dependency (pip install 'stylecam[cluster]'); nothing here imports it before a
cluster run starts.
"""
