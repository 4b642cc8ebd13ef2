using System.Data;
using System.Data.Common;

namespace Covet.Data.ConformanceTests;

/// <summary>DbParameter and DbParameterCollection: values of each type round-tripped, defaults, the collection's members, missing parameters.</summary>
internal static class ParameterScenarios
{
    private static readonly (string Name, DbType? Type, object Value)[] Values =
    [
        ("int", DbType.Int32, 42),
        ("long", DbType.Int64, 1L << 40),
        ("string", DbType.String, "héllo"),
        ("null", null, DBNull.Value),
        ("decimal", DbType.Decimal, 12.345m),
        ("double", DbType.Double, 1.5d),
        ("bool", DbType.Boolean, true),
        ("bytes", DbType.Binary, new byte[] { 1, 2, 3 }),
        ("inferred-int", null, 7),
        ("inferred-string", null, "x"),
    ];

    public static IEnumerable<Scenario> All()
    {
        foreach (var (name, type, value) in Values)
        {
            yield return Scenario.Sync($"param.value-{name}", r =>
            {
                var c = r.Open();
                var command = r.Command(c, "SELECT @p");
                var p = command.CreateParameter();
                p.ParameterName = "@p";
                if (type is { } t)
                    p.DbType = t;
                p.Value = value;
                command.Parameters.Add(p);
                r.R.Try("scalar", () => command.ExecuteScalar());
                r.R.Val("DbType after", p.DbType);
            });
        }

        yield return Scenario.Sync("param.defaults", r =>
        {
            var command = r.Own(r.New().CreateCommand());
            var p = command.CreateParameter();
            r.R.Val("type", p.GetType());
            r.R.Val("ParameterName", p.ParameterName);
            r.R.Val("DbType", p.DbType);
            r.R.Val("Direction", p.Direction);
            r.R.Val("IsNullable", p.IsNullable);
            r.R.Val("Size", p.Size);
            r.R.Val("Value", p.Value);
            r.R.Val("SourceColumn", p.SourceColumn);
        });

        yield return Scenario.Sync("param.collection-members", r =>
        {
            var command = r.Own(r.New().CreateCommand());
            var parameters = command.Parameters;
            var a = command.CreateParameter();
            a.ParameterName = "@a";
            var b = command.CreateParameter();
            b.ParameterName = "@b";
            r.R.Val("type", parameters.GetType());
            r.R.Try("Add a", () => parameters.Add(a));
            r.R.Try("Add b", () => parameters.Add(b));
            r.R.Val("Count", parameters.Count);
            r.R.Val("Contains(@a)", parameters.Contains("@a"));
            r.R.Val("Contains(b)", parameters.Contains(b));
            r.R.Val("IndexOf(@b)", parameters.IndexOf("@b"));
            r.R.Try("this[@a] is a", () => ReferenceEquals(parameters["@a"], a));
            r.R.Try("this[missing]", () => parameters["@missing"]);
            r.R.Try("Add same again", () => parameters.Add(a));
            r.R.Try("RemoveAt(0)", () => parameters.RemoveAt(0));
            r.R.Val("Count after remove", parameters.Count);
            r.R.Try("Add non-parameter", () => parameters.Add("string"));
            r.R.Try("Clear", parameters.Clear);
            r.R.Val("Count after clear", parameters.Count);
        });

        yield return Scenario.Sync("param.missing", r =>
        {
            var c = r.Open();
            r.R.Try("scalar", () => r.Scalar(c, "SELECT @missing"));
            r.R.Val("State", c.State);
        });

        yield return Scenario.Sync("param.unused", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT 1");
            var p = command.CreateParameter();
            p.ParameterName = "@unused";
            p.Value = 1;
            command.Parameters.Add(p);
            r.R.Try("scalar", () => Convert.ToInt64(command.ExecuteScalar()));
        });

        yield return Scenario.Sync("param.output-direction", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT 1");
            var p = command.CreateParameter();
            p.ParameterName = "@out";
            p.Direction = ParameterDirection.Output;
            p.DbType = DbType.Int32;
            command.Parameters.Add(p);
            r.R.Try("execute", () => command.ExecuteNonQuery());
            r.R.Val("Value", p.Value);
        });

        yield return Scenario.Sync("param.reused-across-borrows", r =>
        {
            var c = r.Open();
            var command = r.Command(c, "SELECT @p");
            var p = command.CreateParameter();
            p.ParameterName = "@p";
            p.Value = 5;
            command.Parameters.Add(p);
            r.R.Try("first", () => Convert.ToInt64(command.ExecuteScalar()));
            c.Close();
            c.Open();
            p.Value = 6;
            r.R.Try("after reopen", () => Convert.ToInt64(command.ExecuteScalar()));
        });

        yield return Scenario.Sync("param.factory-create", r =>
        {
            var p = r.S.Factory.CreateParameter();
            r.R.Val("type", p?.GetType());
        }).OnlyPath(PathKind.Factory);
    }
}
