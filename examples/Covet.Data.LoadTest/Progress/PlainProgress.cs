using System.Diagnostics;

namespace Covet.Data.LoadTest.Progress;

/// <summary>Progress as plain lines (at most one per second per phase), for CI logs and redirected output.</summary>
public sealed class PlainProgress(TextWriter output) : IProgressSink
{
    private readonly Lock _lock = new();

    public Task RunAsync(Func<Task> body) => body();

    public IProgressPhase Begin(string title, double maxValue)
    {
        Write($"» {title}");
        return new Phase(this, title);
    }

    public void Message(string text) => Write(text);

    private void Write(string line)
    {
        lock (_lock)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }

    private sealed class Phase(PlainProgress owner, string title) : IProgressPhase
    {
        private readonly long _start = Stopwatch.GetTimestamp();
        private long _lastLine = Stopwatch.GetTimestamp();
        private string _detail = "";

        public void Update(double value, string detail)
        {
            _detail = detail;
            var now = Stopwatch.GetTimestamp();
            if (Stopwatch.GetElapsedTime(_lastLine, now) < TimeSpan.FromSeconds(1))
                return;
            _lastLine = now;
            owner.Write($"  {Stopwatch.GetElapsedTime(_start, now).TotalSeconds,5:0.0} s  {detail}");
        }

        public void Dispose() =>
            owner.Write($"  done: {title} in {Stopwatch.GetElapsedTime(_start).TotalSeconds:0.00} s{(_detail.Length > 0 ? "  " + _detail : "")}");
    }
}
