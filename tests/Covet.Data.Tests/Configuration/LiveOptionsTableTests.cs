namespace Covet.Data.Tests.Configuration;

/// <summary>The README's configuration table says, for every option, whether it changes live, and says what the code does.</summary>
[TestClass]
public sealed class LiveOptionsTableTests
{
    private static string ReadmeTable()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Covet.Data.sln")))
            directory = directory.Parent;
        Assert.IsNotNull(directory, "the repository root (Covet.Data.sln) above the test binaries");
        var readme = File.ReadAllText(Path.Combine(directory.FullName, "README.md"));
        var start = readme.IndexOf("| option / keyword |", StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, start, "the configuration table");
        return readme[start..readme.IndexOf("\n\n", start, StringComparison.Ordinal)];
    }

    [TestMethod]
    public void EveryOption_IsInTheTable_WithTheLiveAnswerTheCodeGives()
    {
        var rows = ReadmeTable().Split('\n').Where(l => l.StartsWith("| `", StringComparison.Ordinal)).ToList();
        var settings = typeof(CovetPoolOptions).GetProperties().Where(p => p.CanWrite).Select(p => p.Name).ToList();
        Assert.IsNotEmpty(settings);
        foreach (var name in settings)
        {
            var row = rows.SingleOrDefault(r => r.Split('|')[1].Contains($"`{name}`", StringComparison.Ordinal));
            Assert.IsNotNull(row, $"README's configuration table has no row for {name}");
            var live = row.Split('|')[^2];
            var expected = OptionChanges.NotLive.ContainsKey(name) ? " no:" : " yes";
            StringAssert.Contains(live, expected, $"{name}: the table's live column disagrees with the code");
        }
    }

    [TestMethod]
    public void NotLiveList_NamesRealSettings()
    {
        var settings = typeof(CovetPoolOptions).GetProperties().Select(p => p.Name).ToHashSet();
        foreach (var name in OptionChanges.NotLive.Keys)
            Assert.Contains(name, settings);
    }
}
