using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Covet.Data.Health;

/// <summary>
/// Turns the stack trace captured at checkout into the user's frames: Covet's own frames and the async machinery are
/// dropped, so the first line a person reads is the code that opened the connection (or the Dapper/EF call it made).
/// </summary>
/// <remarks>
/// Capture is <c>new StackTrace(false)</c> (no file info: the expensive part, symbol lookup, is deferred until a leak is
/// actually reported, when <see cref="Format"/> runs on the background thread).
/// </remarks>
internal static class CheckoutStackTrace
{
    private static readonly Assembly Covet = typeof(CheckoutStackTrace).Assembly;

    public static StackTrace Capture() => new(1, false);

    /// <summary>What a report says when the checkout was not sampled (see <see cref="CovetPoolOptions.LeakStackTraces"/>).</summary>
    public const string NotCaptured =
        "   (stack trace not captured for this checkout: with LeakStackTraces=Adaptive, Covet samples at most one checkout per 100 ms until it " +
        "suspects a leak and captures every checkout after that; set Covet.LeakStackTraces=Always to capture all)";

    public static string Format(StackTrace? trace)
    {
        if (trace is null)
            return NotCaptured;
        var text = new StringBuilder();
        foreach (var frame in trace.GetFrames())
        {
            var method = frame.GetMethod();
            if (method is null)
                continue;
            var type = method.DeclaringType;
            if (type?.Assembly == Covet || IsMachinery(type))
                continue;
            text.Append("   at ").Append(Describe(method)).AppendLine();
        }
        return text.Length == 0 ? "   (no user frames)" : text.ToString().TrimEnd();
    }

    private static bool IsMachinery(Type? type)
    {
        var ns = type?.Namespace;
        return ns is not null && (ns.StartsWith("System.Runtime.CompilerServices", StringComparison.Ordinal)
            || ns.StartsWith("System.Threading", StringComparison.Ordinal)
            || ns.StartsWith("System.Data.Common", StringComparison.Ordinal));
    }

    private static string Describe(MethodBase method)
    {
        var type = method.DeclaringType;
        // An async method's body lives in a compiler-generated state machine "<Name>d__N".MoveNext: show "Type.Name".
        if (type is not null && method.Name == "MoveNext" && type.Name.StartsWith('<') && type.DeclaringType is { } owner)
        {
            // The last '>': the method name may hold brackets itself (top-level statements: "<<Main>$>d__0" is "<Main>$").
            var end = type.Name.LastIndexOf('>');
            return $"{owner.FullName}.{type.Name[1..end]}()";
        }
        var parameters = string.Join(", ", method.GetParameters().Select(p => p.ParameterType.Name));
        return $"{type?.FullName}.{method.Name}({parameters})";
    }
}
