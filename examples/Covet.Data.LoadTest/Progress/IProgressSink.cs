using Spectre.Console;

namespace Covet.Data.LoadTest.Progress;

/// <summary>Where the runner reports what it is doing while it runs.</summary>
public interface IProgressSink
{
    /// <summary>Runs <paramref name="body"/> with the display active (a live view on a terminal).</summary>
    Task RunAsync(Func<Task> body);

    /// <summary>Starts a phase whose progress goes from 0 to <paramref name="maxValue"/>.</summary>
    IProgressPhase Begin(string title, double maxValue);

    /// <summary>A one-off message.</summary>
    void Message(string text);

    /// <summary>A live view when the output is a terminal, plain lines otherwise (CI, pipes, <c>--plain</c>).</summary>
    static IProgressSink Create(bool plain) =>
        plain || Console.IsOutputRedirected || !AnsiConsole.Profile.Capabilities.Interactive
            ? new PlainProgress(Console.Out)
            : new LiveProgress();
}

/// <summary>One phase (a warm-up, a timed run, a memory probe).</summary>
public interface IProgressPhase : IDisposable
{
    /// <summary>Moves the phase to <paramref name="value"/> (of its maximum) and shows <paramref name="detail"/>.</summary>
    void Update(double value, string detail);
}
