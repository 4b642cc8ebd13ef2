using Spectre.Console;

namespace Covet.Data.LoadTest.Progress;

/// <summary>Spectre.Console progress bars, one per phase, with the pool's live counts in the description.</summary>
public sealed class LiveProgress : IProgressSink
{
    private ProgressContext? _context;

    public async Task RunAsync(Func<Task> body) =>
        await AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                _context = context;
                try
                {
                    await body();
                }
                finally
                {
                    _context = null;
                }
            });

    public IProgressPhase Begin(string title, double maxValue)
    {
        var task = _context?.AddTask(Markup.Escape(title), maxValue: Math.Max(maxValue, 1));
        return new Phase(task, title);
    }

    public void Message(string text)
    {
        if (_context is null)
            AnsiConsole.MarkupLine($"[grey]{Markup.Escape(text)}[/]");
        else
            _context.AddTask($"[grey]{Markup.Escape(text)}[/]", autoStart: false, maxValue: 1).Value = 1;
    }

    private sealed class Phase(ProgressTask? task, string title) : IProgressPhase
    {
        public void Update(double value, string detail)
        {
            if (task is null)
                return;
            task.Value = Math.Min(value, task.MaxValue);
            task.Description = $"{Markup.Escape(title)} [grey]{Markup.Escape(detail)}[/]";
        }

        public void Dispose()
        {
            if (task is not null)
            {
                task.Value = task.MaxValue;
                task.StopTask();
            }
        }
    }
}
