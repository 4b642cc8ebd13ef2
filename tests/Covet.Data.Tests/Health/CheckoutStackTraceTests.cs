using System.Diagnostics;
using Covet.Data.Health;

namespace Covet.Data.Tests.Health;

/// <summary>How a leak report names the frames of async code.</summary>
[TestClass]
public sealed class CheckoutStackTraceTests
{
    [TestMethod]
    public async Task Format_AsyncLocalFunction_IsNamedWhole_NotCutAtItsFirstBracket()
    {
        // The compiler names the state machine "<<Outer>g__OpenTheLeak|N_0>d"; the report used to cut it at the first '>'
        // ("<Outer"), as it did top-level statements' "<<Main>$>d__0" ("Program.<Main()").
        var text = await OpenTheLeak();
        StringAssert.Contains(text, "g__OpenTheLeak|");
        Assert.DoesNotContain(".<" + nameof(Format_AsyncLocalFunction_IsNamedWhole_NotCutAtItsFirstBracket) + "()", text);

        static async Task<string> OpenTheLeak()
        {
            await Task.Yield();
            return CheckoutStackTrace.Format(new StackTrace(0, false));
        }
    }
}
